import type { Actions, Unconfirmed } from '../actions.js';
import {
  csrfFailure,
  formFailure,
  loginFailure,
  retryAfterIn,
  retryAfterOf,
  tooMany,
} from '../answers.js';
import { formFields, htmlReply, type Reply, readBody, redirect } from '../http.js';
import type { Context } from '../request.js';
import {
  type Fields,
  PRE_LOGIN_COOKIE,
  type Route,
  type Routes,
  type Signedin,
  type Site,
  signedinOf,
} from '../site.js';
import { confirmPage, loginPage, messagePage, passwordPage, signupPage } from '../views.js';

const FORM = 'application/x-www-form-urlencoded';

/** The HTML forms' posts: the same actions as the JSON API, answered with pages and redirects. */
export function formRoutes(site: Site, actions: Actions): Routes {
  const { allowSignup } = site;
  const passkeys = site.latchkey.passkeys !== null;

  /**
   * A login or sign-up post: the form is read and its pre-login CSRF token checked first;
   * `expired` renders the form again for a token that is not (or no longer) right.
   */
  function preLoginForm(
    expired: (post: PreLoginPost, csrf: string) => string,
    handle: (ctx: Context, post: PreLoginPost, csrf: string) => Promise<Reply>,
  ): Route {
    return async (ctx) => {
      const body = await readBody(ctx.req, FORM);
      if (!body.ok) return formFailure(body.status);
      const fields = formFields(body.text);
      const post = {
        fields,
        next: site.returnTarget(fields.next),
        username: keptUsername(fields.username),
      };
      const token = site.preLoginToken(ctx);
      if (!site.preLoginTokenValid(ctx, fields.csrf)) {
        return htmlReply(403, expired(post, token.csrf), { setCookie: token.setCookie });
      }
      return handle(ctx, post, token.csrf);
    };
  }

  /** The "confirm your password" form again, or "too many attempts". */
  function unconfirmed(
    ctx: Context,
    signedin: Signedin,
    fields: Fields,
    keep: Readonly<Record<string, string>>,
    result: Unconfirmed,
  ): Reply {
    const viewer = site.viewerOf(signedin);
    if (result.error === 'too_many_attempts') {
      const page = messagePage('Too many attempts', tooMany(result.retryAfterSeconds), viewer);
      return htmlReply(429, page, { headers: retryAfterIn(result.retryAfterSeconds) });
    }
    const error = fields.current_password ? 'That password is not right.' : null;
    return htmlReply(403, confirmPage(viewer, { action: ctx.path, fields: keep, error }));
  }

  const routes: Routes = {
    '/login': {
      POST: preLoginForm(
        (post, csrf) =>
          loginPage({
            ...shown(post),
            csrf,
            error: 'This form expired. Please log in again.',
            allowSignup,
            passkeys,
          }),
        async (ctx, post, csrf) => {
          const { fields } = post;
          const result = await actions.login(ctx, {
            username: fields.username,
            password: fields.password,
            remember: fields.remember === 'on',
          });
          if (result.ok) return signedIn(result.setCookie, post.next);
          if (result.error === 'second_factor_required') {
            // The pre-login CSRF cookie stays: the second step's form is bound to it too.
            const next = post.next ? `?next=${encodeURIComponent(post.next)}` : '';
            const step = `${site.latchkey.secondFactorPath}${next}`;
            return redirect(step, { setCookie: result.setCookie });
          }
          const { status, message } = loginFailure(result);
          const page = loginPage({ ...shown(post), csrf, error: message, allowSignup, passkeys });
          return htmlReply(status, page, { headers: retryAfterOf(result) });
        },
      ),
    },
    '/logout': {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, FORM);
        if (!body.ok) return formFailure(body.status);
        // Only a live session needs its token: without one there is nothing to protect.
        const current = await site.currentSession(ctx);
        if (current && !site.formTokenValid(current, formFields(body.text).csrf)) {
          return csrfFailure(site.viewerOf(signedinOf(current, [])), []);
        }
        return redirect('/login', await actions.logout(ctx));
      },
    },
    '/logout-everywhere': {
      POST: site.form(async (_ctx, signedin) =>
        redirect('/login', await actions.logoutEverywhere(signedin)),
      ),
    },
    '/sessions/revoke': {
      POST: site.form(async (ctx, signedin, fields) => {
        const result = await actions.revokeSession(
          ctx,
          signedin,
          fields.id,
          fields.current_password,
        );
        if (result.ok) {
          if (result.ended === 'this device') return redirect('/login', result.signOut);
          return redirect('/sessions', { setCookie: result.setCookie });
        }
        if (result.error === 'not_found') {
          const page = messagePage('Not found', 'No such session.', site.viewerOf(signedin));
          return htmlReply(404, page);
        }
        return unconfirmed(ctx, signedin, fields, { id: fields.id ?? '' }, result);
      }),
    },
    '/sessions/revoke-others': {
      POST: site.form(async (ctx, signedin, fields) => {
        const result = await actions.revokeOthers(ctx, signedin, fields.current_password);
        if (!result.ok) return unconfirmed(ctx, signedin, fields, {}, result);
        return redirect('/sessions', { setCookie: result.setCookie });
      }),
    },
    '/password': {
      POST: site.form(async (ctx, signedin, fields) => {
        const signOutOthers = fields.sign_out_others === 'on';
        const result = await actions.changePassword(ctx, signedin, {
          password: fields.current_password,
          newPassword: fields.new_password,
          signOutOthers,
        });
        if (!result.ok) {
          const keep = { sign_out_others: fields.sign_out_others ?? '' };
          return unconfirmed(ctx, signedin, fields, keep, result);
        }
        const viewer = site.viewerOf({ session: result.session, user: signedin.user });
        if (result.problem === null) {
          const done = signOutOthers
            ? 'Your password is changed and every other session is signed out.'
            : 'Your password is changed.';
          const page = messagePage('Password changed', done, viewer);
          return htmlReply(200, page, { setCookie: result.setCookie });
        }
        const page = passwordPage(viewer, { recentLogin: true, error: result.problem.message });
        return htmlReply(400, page, { setCookie: result.setCookie });
      }),
    },
    '/account/disable': {
      POST: site.form(async (ctx, signedin, fields) => {
        const result = await actions.disableAccount(ctx, signedin, fields.current_password);
        if (!result.ok) return unconfirmed(ctx, signedin, fields, {}, result);
        return redirect('/login', result.signOut);
      }),
    },
  };
  if (site.allowSignup) {
    routes['/signup'] = {
      POST: preLoginForm(
        (post, csrf) =>
          signupPage({ ...shown(post), csrf, error: 'This form expired. Please try again.' }),
        async (ctx, post, csrf) => {
          const { username, password } = post.fields;
          const result = await actions.signup(ctx, { username, password });
          if (result.ok) return signedIn(result.setCookie, post.next);
          if (result.error === 'too_many_attempts') {
            const { retryAfterSeconds } = result;
            const page = signupPage({ ...shown(post), csrf, error: tooMany(retryAfterSeconds) });
            return htmlReply(429, page, { headers: retryAfterIn(retryAfterSeconds) });
          }
          const page = signupPage({ ...shown(post), csrf, error: result.message });
          return htmlReply(result.error === 'username_taken' ? 409 : 400, page);
        },
      ),
    };
  }
  return routes;
}

/** A login or sign-up form as posted. */
interface PreLoginPost {
  readonly fields: Fields;
  /** Where to go once signed in (see `returnTargets`). */
  readonly next: string | null;
  readonly username: string;
}

/** What the form shows again: the username and the return address, never the password. */
function shown(post: PreLoginPost): { username: string; next: string | null } {
  return { username: post.username, next: post.next };
}

/** Signed in from a pre-login form: its CSRF cookie is done with. */
function signedIn(setCookie: readonly string[], next: string | null): Reply {
  return redirect(next ?? '/dashboard', { setCookie: [...setCookie, PRE_LOGIN_COOKIE.blank()] });
}

/** The username to put back in the form after a failure: the password never is. */
function keptUsername(value: string | undefined): string {
  return typeof value === 'string' ? value.slice(0, 256) : '';
}
