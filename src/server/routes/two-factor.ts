import type { SecondFactorProof } from '../../index.js';
import type { Unconfirmed } from '../actions.js';
import { csrfFailure, formFailure, retryAfterIn, throttledJson, tooMany } from '../answers.js';
import {
  formFields,
  htmlReply,
  jsonReply,
  type Reply,
  readBody,
  readJsonObject,
  redirect,
} from '../http.js';
import { type Context, nextOf } from '../request.js';
import {
  type Fields,
  isSignedin,
  PRE_LOGIN_COOKIE,
  type Route,
  type Routes,
  type Signedin,
  type Site,
  signedinOf,
} from '../site.js';
import type { SecondStepOutcome, TwoFactorActions, Unsecured } from '../two-factor-actions.js';
import {
  enrolPage,
  recoveryCodesPage,
  secondFactorPage,
  twoFactorPage,
} from '../two-factor-views.js';
import { confirmPage, messagePage } from '../views.js';

const FORM = 'application/x-www-form-urlencoded';
const STEP_PATH = '/login/second-factor';
const PROFILE_PATH = '/profile/two-factor';

/** The second step of a login, step-up, and the profile's two-factor pages, with their JSON twins. */
export function twoFactorRoutes(site: Site, actions: TwoFactorActions): Routes {
  const { latchkey } = site;
  const { factors } = actions;
  const passkeys = latchkey.passkeys !== null;

  /** The second-step page for whatever the request has: a pending login or an AAL1 session. */
  async function stepPage(ctx: Context, error: string | null, status = 200): Promise<Reply> {
    const next = site.returnTarget(nextOf(ctx));
    const recovery = ctx.query.get('recovery') === '1';
    const methods = await latchkey.pendingSecondFactor(ctx.cookie);
    if (methods) {
      const token = site.preLoginToken(ctx);
      const page = secondFactorPage({
        csrf: token.csrf,
        viewer: null,
        methods,
        next,
        recovery,
        error,
      });
      return htmlReply(status, page, { setCookie: token.setCookie });
    }
    const auth = await site.authenticate(ctx, false);
    if (!auth.ok) return redirect(next ? `/login?next=${encodeURIComponent(next)}` : '/login');
    const signedin = signedinOf(auth.session, auth.setCookie);
    if (auth.session.aal >= 2) return redirect(next ?? '/dashboard', { setCookie: auth.setCookie });
    const status2fa = await factors.status(auth.session.userId);
    // Nothing to step up with: a page that needs a second factor needs one set up first.
    if (!status2fa.enabled) return redirect(PROFILE_PATH, { setCookie: auth.setCookie });
    const viewer = site.viewerOf(signedin);
    const stepMethods = [
      ...(status2fa.totp ? (['totp'] as const) : []),
      ...(status2fa.passkeys.length > 0 ? (['passkey'] as const) : []),
      ...(status2fa.recoveryCodesLeft > 0 ? (['recovery'] as const) : []),
    ];
    const page = secondFactorPage({
      csrf: viewer.csrf,
      viewer,
      methods: stepMethods,
      next,
      recovery,
      error,
    });
    return htmlReply(status, page, { setCookie: auth.setCookie });
  }

  /** Where a form's second step went: signed in and on, or the page again saying why not. */
  async function stepAnswered(
    ctx: Context,
    fields: Fields,
    outcome: SecondStepOutcome,
  ): Promise<Reply> {
    const next = site.returnTarget(fields.next);
    if (outcome.ok) {
      return redirect(next ?? '/dashboard', {
        setCookie: [...outcome.setCookie, PRE_LOGIN_COOKIE.blank()],
      });
    }
    if (outcome.error === 'too_many_attempts') {
      const reply = await stepPage(ctx, tooMany(outcome.retryAfterSeconds), 429);
      return { ...reply, headers: retryAfterIn(outcome.retryAfterSeconds) };
    }
    if (outcome.error === 'invalid_code') {
      return stepPage(ctx, 'That code is not right. Try again.', 401);
    }
    // The pending login is over (expired, or the account was disabled): start again.
    const setCookie = 'setCookie' in outcome ? outcome.setCookie : [];
    return redirect(next ? `/login?next=${encodeURIComponent(next)}` : '/login', { setCookie });
  }

  /** A form whose account change needs level 2 and a recent password: the answer when it may not. */
  function unsecured(ctx: Context, signedin: Signedin, fields: Fields, result: Unsecured): Reply {
    const viewer = site.viewerOf(signedin);
    if (result.error === 'second_factor_required') {
      return redirect(`${STEP_PATH}?next=${encodeURIComponent(PROFILE_PATH)}`);
    }
    if (result.error === 'too_many_attempts') {
      const page = messagePage('Too many attempts', tooMany(result.retryAfterSeconds), viewer);
      return htmlReply(429, page, { headers: retryAfterIn(result.retryAfterSeconds) });
    }
    const error = fields.current_password ? 'That password is not right.' : null;
    const keep: Record<string, string> = fields.id ? { id: fields.id } : {};
    return htmlReply(403, confirmPage(viewer, { action: ctx.path, fields: keep, error }));
  }

  const secureForm = (
    handle: (ctx: Context, signedin: Signedin, fields: Fields) => Promise<Reply>,
  ): Route =>
    site.form(async (ctx, signedin, fields) => {
      const secured = await actions.secure(ctx, signedin, fields.current_password);
      if (!secured.ok) return unsecured(ctx, signedin, fields, secured);
      const rotated = { ...signedin, session: secured.session };
      const reply = await handle(ctx, rotated, fields);
      return { ...reply, setCookie: [...secured.setCookie, ...(reply.setCookie ?? [])] };
    });

  const secureJson = (
    handle: (ctx: Context, signedin: Signedin, body: Record<string, unknown>) => Promise<Reply>,
  ): Route =>
    site.json(async (ctx, signedin, body) => {
      const secured = await actions.secure(ctx, signedin, body.currentPassword);
      if (!secured.ok) return unsecuredJson(secured);
      const reply = await handle(ctx, { ...signedin, session: secured.session }, body);
      return { ...reply, setCookie: [...secured.setCookie, ...(reply.setCookie ?? [])] };
    });

  return {
    [STEP_PATH]: {
      GET: (ctx) => stepPage(ctx, null),
      POST: async (ctx) => {
        const body = await readBody(ctx.req, FORM);
        if (!body.ok) return formFailure(body.status);
        const fields = formFields(body.text);
        const proof = codeProof(fields.kind, fields.code);
        if ((await latchkey.pendingSecondFactor(ctx.cookie)) !== null) {
          if (!site.preLoginTokenValid(ctx, fields.csrf)) {
            return stepPage(ctx, 'This form expired. Please try again.', 403);
          }
          return stepAnswered(ctx, fields, await actions.secondStep(ctx, proof, null));
        }
        const signedin = await site.pageSession(ctx);
        if (!isSignedin(signedin)) return signedin;
        if (!site.formTokenValid(signedin.session, fields.csrf)) {
          return csrfFailure(site.viewerOf(signedin), signedin.setCookie);
        }
        return stepAnswered(ctx, fields, await actions.secondStep(ctx, proof, signedin.session));
      },
    },
    [PROFILE_PATH]: {
      GET: site.page(async (signedin) =>
        twoFactorPage(site.viewerOf(signedin), await factors.status(signedin.session.userId), {
          passkeys,
        }),
      ),
    },
    '/profile/two-factor/totp': {
      POST: secureForm(async (_ctx, signedin) => {
        const enrolment = await factors.beginTotp(signedin.session.userId, signedin.user.username);
        if (!enrolment) return redirect(PROFILE_PATH);
        return htmlReply(200, enrolPage(site.viewerOf(signedin), enrolment));
      }),
    },
    '/profile/two-factor/totp/confirm': {
      POST: site.form(async (_ctx, signedin, fields) => {
        const result = await actions.confirmTotp(signedin, fields.id, fields.code);
        if (result.ok) {
          const viewer = site.viewerOf({ session: result.session, user: signedin.user });
          const setCookie = result.setCookie;
          if (result.recoveryCodes.length === 0) return redirect(PROFILE_PATH, { setCookie });
          return htmlReply(200, recoveryCodesPage(viewer, result.recoveryCodes), { setCookie });
        }
        const viewer = site.viewerOf(signedin);
        if (result.error === 'too_many_attempts') {
          const page = messagePage('Too many attempts', tooMany(result.retryAfterSeconds), viewer);
          return htmlReply(429, page, { headers: retryAfterIn(result.retryAfterSeconds) });
        }
        const { userId } = signedin.session;
        const again = await factors.pendingEnrolment(
          userId,
          fields.id ?? '',
          signedin.user.username,
        );
        if (!again) return redirect(PROFILE_PATH);
        return htmlReply(
          401,
          enrolPage(viewer, again, 'That code is not right. Try the next one.'),
        );
      }),
    },
    '/profile/two-factor/recovery-codes': {
      POST: secureForm(async (_ctx, signedin) => {
        const { userId } = signedin.session;
        if (!(await factors.status(userId)).enabled) return redirect(PROFILE_PATH);
        const codes = await factors.regenerateRecoveryCodes(userId);
        return htmlReply(200, recoveryCodesPage(site.viewerOf(signedin), codes));
      }),
    },
    '/profile/two-factor/remove': {
      POST: secureForm(async (_ctx, signedin, fields) => {
        const removed = await factors.remove(signedin.session.userId, fields.id ?? '');
        const status = await factors.status(signedin.session.userId);
        const notice = removed ? 'Removed.' : 'Nothing to remove.';
        return htmlReply(
          removed ? 200 : 404,
          twoFactorPage(site.viewerOf(signedin), status, { notice, passkeys }),
        );
      }),
    },
    '/profile/two-factor/rename': {
      POST: site.form(async (_ctx, signedin, fields) => {
        const { userId } = signedin.session;
        const renamed = await factors.rename(userId, fields.id ?? '', fields.name);
        const notice = renamed ? 'Renamed.' : 'Nothing renamed: give a name of 1 to 64 characters.';
        const page = twoFactorPage(site.viewerOf(signedin), await factors.status(userId), {
          notice,
          passkeys,
        });
        return htmlReply(renamed ? 200 : 400, page);
      }),
    },
    '/api/two-factor/rename': {
      POST: site.json(async (_ctx, signedin, body) => {
        const id = typeof body.id === 'string' ? body.id : '';
        if (!(await factors.rename(signedin.session.userId, id, body.name))) {
          return jsonReply(404, { error: 'not_found' });
        }
        return { status: 204 };
      }),
    },
    '/api/login/second-factor': {
      POST: async (ctx) => {
        const body = await readJsonObject(ctx.req);
        if (!body.ok) return body.reply;
        const proof = proofOf(body.value);
        const session =
          (await latchkey.pendingSecondFactor(ctx.cookie)) === null
            ? await site.currentSession(ctx)
            : null;
        const outcome = await actions.secondStep(ctx, proof, session);
        // A passkey's challenge is used up either way: its cookie goes.
        const used =
          proof.type === 'passkey' && latchkey.passkeys ? [latchkey.passkeys.cookie.blank()] : [];
        if (outcome.ok) {
          const user = 'user' in outcome ? outcome.user : outcome.session.user;
          return jsonReply(
            200,
            { user, aal: outcome.session.aal },
            { setCookie: [...outcome.setCookie, ...used] },
          );
        }
        if (outcome.error === 'too_many_attempts') return throttledJson(outcome.retryAfterSeconds);
        const setCookie = 'setCookie' in outcome ? outcome.setCookie : [];
        return jsonReply(401, { error: outcome.error }, { setCookie });
      },
    },
    '/api/two-factor': {
      GET: site.api(async (_ctx, signedin) =>
        jsonReply(200, await factors.status(signedin.session.userId)),
      ),
    },
    '/api/two-factor/totp': {
      POST: secureJson(async (_ctx, signedin) => {
        const enrolment = await factors.beginTotp(signedin.session.userId, signedin.user.username);
        if (!enrolment) return jsonReply(409, { error: 'already_enrolled' });
        return jsonReply(201, enrolment);
      }),
    },
    '/api/two-factor/totp/confirm': {
      POST: site.json(async (_ctx, signedin, body) => {
        const result = await actions.confirmTotp(signedin, body.factorId, body.code);
        if (result.ok) {
          const { recoveryCodes, setCookie } = result;
          return jsonReply(200, { recoveryCodes }, { setCookie });
        }
        if (result.error === 'too_many_attempts') return throttledJson(result.retryAfterSeconds);
        return jsonReply(401, { error: 'invalid_code' });
      }),
    },
    '/api/two-factor/recovery-codes': {
      POST: secureJson(async (_ctx, signedin) => {
        const { userId } = signedin.session;
        if (!(await factors.status(userId)).enabled)
          return jsonReply(409, { error: 'not_enrolled' });
        return jsonReply(200, { recoveryCodes: await factors.regenerateRecoveryCodes(userId) });
      }),
    },
    '/api/two-factor/remove': {
      POST: secureJson(async (_ctx, signedin, body) => {
        const id = typeof body.id === 'string' ? body.id : '';
        if (!(await factors.remove(signedin.session.userId, id))) {
          return jsonReply(404, { error: 'not_found' });
        }
        return { status: 204 };
      }),
    },
  };
}

function unsecuredJson(result: Unsecured): Reply {
  if (result.error === 'second_factor_required') {
    return jsonReply(401, { error: 'second_factor_required' });
  }
  return unconfirmedJson(result);
}

function unconfirmedJson(result: Unconfirmed): Reply {
  if (result.error === 'too_many_attempts') return throttledJson(result.retryAfterSeconds);
  return jsonReply(403, { error: 'reauthentication_required' });
}

/** A form's code as a proof: `kind=recovery` for a recovery code, else the app's code. */
function codeProof(kind: string | undefined, code: string | undefined): SecondFactorProof {
  return { type: kind === 'recovery' ? 'recovery' : 'totp', code };
}

/** A JSON body's proof: `{ type: "totp" | "recovery", code }` (or what the passkey route sends). */
function proofOf(body: Record<string, unknown>): SecondFactorProof {
  if (body.type === 'passkey') return { type: 'passkey', response: body.response };
  return { type: body.type === 'recovery' ? 'recovery' : 'totp', code: body.code };
}
