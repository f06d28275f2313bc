import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import {
  CredentialError,
  type CsrfTokens,
  HostCookie,
  isSameOrigin,
  type Latchkey,
  type LoginContext,
  type LoginResult,
  RETRY_AFTER_SECONDS,
  type Reauthentication,
  type SessionRecord,
  type SessionStore,
  StoreUnavailableError,
  safeNextPath,
} from '../index.js';
import {
  denialReply,
  formFields,
  htmlReply,
  jsonObject,
  jsonReply,
  type Reply,
  readBody,
  redirect,
  send,
} from './http.js';
import {
  confirmPage,
  dashboardPage,
  loginPage,
  messagePage,
  type PageUser,
  passwordPage,
  profilePage,
  renavigatePage,
  sessionsPage,
  signupPage,
  userOf,
  type Viewer,
} from './pages.js';
import { STYLESHEET } from './style.js';

export interface AppOptions {
  readonly latchkey: Latchkey;
  /** Probed by `/readyz`. */
  readonly store: SessionStore;
  readonly allowSignup: boolean;
  /** Proxy addresses whose `X-Forwarded-For` is believed. */
  readonly trustedProxies: ReadonlySet<string>;
  /** Signs CSRF tokens: every server process behind one address needs the same secret. */
  readonly csrf: CsrfTokens;
  /** Browsers reach us over HTTPS (TLS here or at a proxy): HSTS on, and origins are https. */
  readonly https: boolean;
  /**
   * Unsafe requests must name a loopback host (`localhost`, `127.x`, `[::1]`): a page on another
   * name that resolves here (DNS rebinding) is same-origin to the browser but refused by us. For
   * a server listening on loopback over plain HTTP.
   */
  readonly loopbackOnly: boolean;
  /**
   * Hosts (`host`, any port, or `host:port`) the login page may send a browser back to by absolute
   * URL (`?next=` or `?rd=`), for forward-auth set-ups; otherwise only same-origin paths.
   */
  readonly forwardAuthHosts?: readonly string[];
  /** Told about a request that failed unexpectedly (a 500); by default written to stderr. */
  readonly onError?: (error: unknown) => void;
}

/** What a route reads from a request. */
interface Context {
  readonly req: IncomingMessage;
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly ip: string | null;
  readonly cookie: string | null;
}

type Route = (ctx: Context) => Promise<Reply>;

type Signedin = {
  readonly session: SessionRecord;
  readonly user: PageUser;
  /** Cookies authentication asked to set (a session restored from remember-me). */
  readonly setCookie: readonly string[];
};

type Fields = Record<string, string | undefined>;

const RENAVIGATED = 'renav';
const CLEAR_SITE_DATA = { 'clear-site-data': '"cache", "cookies", "storage"' };
const FORM = 'application/x-www-form-urlencoded';
const JSON_BODY = 'application/json';
const LOGIN_FAILED = 'Incorrect username or password.';
const HSTS = { 'strict-transport-security': 'max-age=31536000; includeSubDomains' };
/** Binds the login and sign-up forms' CSRF tokens before there is a session. */
const PRE_LOGIN_COOKIE = new HostCookie('__Host-csrf');
const PRE_LOGIN_VALUE = /^[A-Za-z0-9_-]{43}$/;

/** The reference server's request handler: HTML pages, the JSON API and health checks. */
export function createApp(
  options: AppOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { latchkey, store, allowSignup, trustedProxies, csrf, https, loopbackOnly } = options;
  const returnTarget = returnTargets(options.forwardAuthHosts ?? [], https);

  function requestInfo(ctx: Context, api: boolean) {
    return {
      method: ctx.method,
      url: api ? ctx.path : withoutMarker(ctx),
      cookie: ctx.cookie,
      accept: api ? JSON_BODY : header(ctx.req, 'accept'),
      secFetchMode: api ? null : header(ctx.req, 'sec-fetch-mode'),
      ip: ctx.ip,
      userAgent: header(ctx.req, 'user-agent'),
    };
  }

  async function pageSession(ctx: Context): Promise<Signedin | Reply> {
    const auth = await latchkey.authenticate(requestInfo(ctx, false));
    if (auth.ok) return signedinOf(auth.session, auth.setCookie);
    if (auth.reason === 'missing' && isCrossSiteNavigation(ctx)) {
      const marker = `${ctx.query.size > 0 ? '&' : '?'}${RENAVIGATED}=1`;
      return htmlReply(200, renavigatePage(`${ctx.req.url ?? '/'}${marker}`));
    }
    return denialReply(auth.denial, auth.setCookie);
  }

  async function apiSession(ctx: Context): Promise<Signedin | Reply> {
    const auth = await latchkey.authenticate(requestInfo(ctx, true));
    if (auth.ok) return signedinOf(auth.session, auth.setCookie);
    return denialReply(auth.denial, auth.setCookie);
  }

  function signedinOf(session: SessionRecord, setCookie: readonly string[]): Signedin {
    return { session, user: userOf(session.user, session.userId), setCookie };
  }

  function viewerOf(signedin: { session: SessionRecord; user: PageUser }): Viewer {
    return { user: signedin.user, csrf: csrf.tokenFor(`session:${signedin.session.id}`) };
  }

  function loginContext(ctx: Context): LoginContext {
    return { ip: ctx.ip, userAgent: header(ctx.req, 'user-agent'), cookie: ctx.cookie };
  }

  /** The login and sign-up forms' token, bound to the `__Host-csrf` cookie (set when absent). */
  function preLoginToken(ctx: Context): { csrf: string; setCookie: string[] } {
    const value = PRE_LOGIN_COOKIE.read(ctx.cookie).value;
    if (value !== null && PRE_LOGIN_VALUE.test(value)) {
      return { csrf: csrf.tokenFor(`login:${value}`), setCookie: [] };
    }
    const fresh = randomBytes(32).toString('base64url');
    return {
      csrf: csrf.tokenFor(`login:${fresh}`),
      setCookie: [PRE_LOGIN_COOKIE.serialize(fresh)],
    };
  }

  function preLoginTokenValid(ctx: Context, token: unknown): boolean {
    const value = PRE_LOGIN_COOKIE.read(ctx.cookie).value;
    return value !== null && PRE_LOGIN_VALUE.test(value) && csrf.verify(`login:${value}`, token);
  }

  /** The caller's own session with this id, or null: someone else's id looks unknown. */
  async function ownSession(session: SessionRecord, id: unknown): Promise<SessionRecord | null> {
    if (typeof id !== 'string') return null;
    const sessions = await latchkey.listSessions(session.userId);
    return sessions.find((candidate) => candidate.id === id) ?? null;
  }

  /** Cookies and headers that end this browser's sign-in. */
  function signedOut(): Partial<Reply> {
    const setCookie = [latchkey.sessionCookie.blank()];
    if (latchkey.rememberCookie) setCookie.push(latchkey.rememberCookie.blank());
    return { setCookie, headers: CLEAR_SITE_DATA };
  }

  const pages: Record<string, Route> = {
    '/': async (ctx) => {
      const signedin = await pageSession(ctx);
      if (isSignedin(signedin)) return redirect('/dashboard', { setCookie: signedin.setCookie });
      return signedin.status === 303
        ? redirect('/login', { setCookie: signedin.setCookie })
        : signedin;
    },
    '/login': async (ctx) => {
      const next = returnTarget(nextOf(ctx));
      const auth = await latchkey.authenticate(requestInfo(ctx, false));
      if (auth.ok) return redirect(next ?? '/dashboard', { setCookie: auth.setCookie });
      const token = preLoginToken(ctx);
      return htmlReply(200, loginPage({ csrf: token.csrf, next, allowSignup }), {
        setCookie: [...auth.setCookie, ...token.setCookie],
      });
    },
    '/dashboard': withPage((signedin) => dashboardPage(viewerOf(signedin), signedin.session)),
    '/profile': withPage((signedin) => profilePage(viewerOf(signedin), signedin.session)),
    '/sessions': withPage(async (signedin) => {
      const sessions = await latchkey.listSessions(signedin.session.userId);
      return sessionsPage(viewerOf(signedin), sessions, signedin.session.id);
    }),
    '/password': withPage((signedin) =>
      passwordPage(viewerOf(signedin), { recentLogin: latchkey.isRecentLogin(signedin.session) }),
    ),
    '/api/me': withApi(async (_ctx, signedin) =>
      jsonReply(200, { user: signedin.user, session: sessionView(signedin.session) }),
    ),
    '/api/sessions': withApi(async (_ctx, signedin) => {
      const sessions = await latchkey.listSessions(signedin.session.userId);
      return jsonReply(200, {
        sessions: sessions.map((session) => ({
          ...sessionView(session),
          current: session.id === signedin.session.id,
        })),
      });
    }),
    '/healthz': async () => jsonReply(200, { status: 'ok' }),
    // Forward auth (nginx auth_request, Traefik, Caddy): 200 with who it is, else 401; never a
    // redirect. A store outage is a 503 (never "logged out"). The user name is percent-encoded.
    '/auth/verify': async (ctx) => {
      // The session cookie only: a remember-me restore rotates cookies, which a proxy would not
      // pass on from here; it happens on the login page instead, which sends the browser back.
      const read = latchkey.sessionCookie.read(ctx.cookie);
      const cookie = read.value === null ? null : `${latchkey.sessionCookie.name}=${read.value}`;
      const auth = await latchkey.authenticate({ ...requestInfo(ctx, true), cookie });
      if (!auth.ok) {
        const status = auth.reason === 'unavailable' ? 503 : 401;
        return { status, setCookie: auth.setCookie, headers: status === 503 ? retryAfter() : {} };
      }
      const user = userOf(auth.session.user, auth.session.userId);
      return {
        status: 200,
        setCookie: auth.setCookie,
        headers: {
          'x-auth-user-id': encodeURIComponent(user.id),
          'x-auth-user': encodeURIComponent(user.username),
        },
      };
    },
    '/readyz': async () => {
      try {
        await store.get('readiness-probe');
        return jsonReply(200, { status: 'ready' });
      } catch {
        return jsonReply(503, { status: 'unavailable' }, { headers: retryAfter() });
      }
    },
    '/assets/style.css': async () => ({
      status: 200,
      type: 'css',
      body: STYLESHEET,
      cacheable: true,
    }),
  };
  if (allowSignup) {
    pages['/signup'] = async (ctx) => {
      const token = preLoginToken(ctx);
      const page = signupPage({ csrf: token.csrf, next: returnTarget(nextOf(ctx)) });
      return htmlReply(200, page, { setCookie: token.setCookie });
    };
  }

  function withPage(render: (signedin: Signedin) => string | Promise<string>): Route {
    return async (ctx) => {
      const signedin = await pageSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      return htmlReply(200, await render(signedin), { setCookie: signedin.setCookie });
    };
  }

  function withApi(handle: (ctx: Context, signedin: Signedin) => Promise<Reply>): Route {
    return async (ctx) => {
      const signedin = await apiSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      const reply = await handle(ctx, signedin);
      return { ...reply, setCookie: [...signedin.setCookie, ...(reply.setCookie ?? [])] };
    };
  }

  /** A form post by a signed-in user: the session and the form's CSRF token are checked first. */
  function withForm(
    handle: (ctx: Context, signedin: Signedin, fields: Fields) => Promise<Reply>,
  ): Route {
    return async (ctx) => {
      const signedin = await pageSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      const body = await readBody(ctx.req, FORM);
      if (!body.ok) return formFailure(body.status);
      const fields = formFields(body.text);
      if (!csrf.verify(`session:${signedin.session.id}`, fields.csrf)) {
        return csrfFailure(viewerOf(signedin), signedin.setCookie);
      }
      const reply = await handle(ctx, signedin, fields);
      return { ...reply, setCookie: [...signedin.setCookie, ...(reply.setCookie ?? [])] };
    };
  }

  /** A JSON call by a signed-in user; the body is optional but must be a JSON object if sent. */
  function withJson(
    handle: (ctx: Context, signedin: Signedin, body: Record<string, unknown>) => Promise<Reply>,
  ): Route {
    return withApi(async (ctx, signedin) => {
      const body = await optionalJson(ctx);
      return body.ok ? handle(ctx, signedin, body.value) : body.reply;
    });
  }

  /**
   * A sensitive form action: goes ahead after a recent password login or with the right
   * `current_password`; otherwise answers with the "confirm your password" form.
   */
  async function confirmForm(
    ctx: Context,
    signedin: Signedin,
    fields: Fields,
    keep: Readonly<Record<string, string>>,
  ): Promise<(Reauthentication & { ok: true }) | Reply> {
    const result = await latchkey.reauthenticate(
      signedin.session,
      fields.current_password,
      loginContext(ctx),
    );
    if (result.ok) return result;
    const viewer = viewerOf(signedin);
    if (result.error === 'too_many_attempts') {
      const page = messagePage('Too many attempts', tooMany(result.retryAfterSeconds), viewer);
      return htmlReply(429, page, { headers: retryAfterIn(result.retryAfterSeconds) });
    }
    const error = fields.current_password ? 'That password is not right.' : null;
    return htmlReply(403, confirmPage(viewer, { action: ctx.path, fields: keep, error }));
  }

  async function confirmJson(
    ctx: Context,
    signedin: Signedin,
    body: Record<string, unknown>,
  ): Promise<(Reauthentication & { ok: true }) | Reply> {
    const result = await latchkey.reauthenticate(
      signedin.session,
      body.currentPassword,
      loginContext(ctx),
    );
    if (result.ok) return result;
    if (result.error === 'too_many_attempts') return throttledJson(result.retryAfterSeconds);
    return jsonReply(403, { error: 'reauthentication_required' });
  }

  /** Every state-changing route, by path and method. */
  const actions: Record<string, Record<string, Route>> = {
    '/login': {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, FORM);
        if (!body.ok) return formFailure(body.status);
        const fields = formFields(body.text);
        const next = returnTarget(fields.next);
        const username = keptUsername(fields.username);
        if (!preLoginTokenValid(ctx, fields.csrf)) {
          const token = preLoginToken(ctx);
          const error = 'This form expired. Please log in again.';
          const page = loginPage({ csrf: token.csrf, username, next, error, allowSignup });
          return htmlReply(403, page, { setCookie: token.setCookie });
        }
        const result = await latchkey.login(
          {
            username: fields.username,
            password: fields.password,
            remember: fields.remember === 'on',
          },
          loginContext(ctx),
        );
        if (result.ok) {
          const setCookie = [...result.setCookie, PRE_LOGIN_COOKIE.blank()];
          return redirect(next ?? '/dashboard', { setCookie });
        }
        const { csrf: token } = preLoginToken(ctx);
        const { status, message } = loginFailure(result);
        const page = loginPage({ csrf: token, username, next, error: message, allowSignup });
        return htmlReply(status, page, { headers: retryAfterOf(result) });
      },
    },
    '/logout': {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, FORM);
        if (!body.ok) return formFailure(body.status);
        // Only a live session needs its token: without one there is nothing to protect.
        const current = await currentSession(ctx);
        if (current && !csrf.verify(`session:${current.id}`, formFields(body.text).csrf)) {
          return csrfFailure(viewerOf(signedinOf(current, [])), []);
        }
        const { setCookie } = await latchkey.endSession(ctx.cookie);
        return redirect('/login', { setCookie, headers: CLEAR_SITE_DATA });
      },
    },
    '/logout-everywhere': {
      POST: withForm(async (_ctx, signedin) => {
        await latchkey.logoutEverywhere(signedin.session.userId);
        return redirect('/login', signedOut());
      }),
    },
    '/sessions/revoke': {
      POST: withForm(async (ctx, signedin, fields) => {
        const target = await ownSession(signedin.session, fields.id);
        if (!target) {
          const page = messagePage('Not found', 'No such session.', viewerOf(signedin));
          return htmlReply(404, page);
        }
        if (target.id === signedin.session.id) {
          // Revoking this device is logging out: its remember-me token goes too.
          const { setCookie } = await latchkey.endSession(ctx.cookie);
          return redirect('/login', { setCookie, headers: CLEAR_SITE_DATA });
        }
        const confirmed = await confirmForm(ctx, signedin, fields, { id: target.id });
        if (!('ok' in confirmed)) return confirmed;
        await latchkey.revoke(target.id);
        return redirect('/sessions', { setCookie: confirmed.setCookie });
      }),
    },
    '/sessions/revoke-others': {
      POST: withForm(async (ctx, signedin, fields) => {
        const confirmed = await confirmForm(ctx, signedin, fields, {});
        if (!('ok' in confirmed)) return confirmed;
        const { userId, id } = confirmed.session;
        await latchkey.revokeAllForUser(userId, { except: id });
        return redirect('/sessions', { setCookie: confirmed.setCookie });
      }),
    },
    '/password': {
      POST: withForm(async (ctx, signedin, fields) => {
        const keep = { sign_out_others: fields.sign_out_others ?? '' };
        const confirmed = await confirmForm(ctx, signedin, fields, keep);
        if (!('ok' in confirmed)) return confirmed;
        const signOutOthers = fields.sign_out_others === 'on';
        const changed = await changePassword(confirmed.session, fields.new_password, signOutOthers);
        if (changed === true) {
          const page = messagePage(
            'Password changed',
            signOutOthers
              ? 'Your password is changed and every other session is signed out.'
              : 'Your password is changed.',
            viewerOf({ session: confirmed.session, user: signedin.user }),
          );
          return htmlReply(200, page, { setCookie: confirmed.setCookie });
        }
        const viewer = viewerOf({ session: confirmed.session, user: signedin.user });
        const page = passwordPage(viewer, { recentLogin: true, error: changed.message });
        return htmlReply(400, page, { setCookie: confirmed.setCookie });
      }),
    },
    '/account/disable': {
      POST: withForm(async (ctx, signedin, fields) => {
        const confirmed = await confirmForm(ctx, signedin, fields, {});
        if (!('ok' in confirmed)) return confirmed;
        await latchkey.disableUser(confirmed.session.userId);
        return redirect('/login', signedOut());
      }),
    },
    '/api/login': {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, JSON_BODY);
        if (!body.ok) return jsonReply(body.status, { error: body.error });
        const credentials = jsonObject(body.text);
        if (!credentials) return jsonReply(400, { error: 'invalid_request' });
        const result = await latchkey.login(credentials, loginContext(ctx));
        if (!result.ok) {
          const { status } = loginFailure(result);
          return jsonReply(status, { error: result.error }, { headers: retryAfterOf(result) });
        }
        return jsonReply(200, { user: result.user }, { setCookie: result.setCookie });
      },
    },
    '/api/logout': {
      POST: async (ctx) => {
        const { setCookie } = await latchkey.endSession(ctx.cookie);
        return { status: 204, setCookie, headers: CLEAR_SITE_DATA };
      },
    },
    '/api/logout-everywhere': {
      POST: withApi(async (_ctx, signedin) => {
        await latchkey.logoutEverywhere(signedin.session.userId);
        return { status: 204, ...signedOut() };
      }),
    },
    '/api/sessions/revoke-others': {
      POST: withJson(async (ctx, signedin, body) => {
        const confirmed = await confirmJson(ctx, signedin, body);
        if (!('ok' in confirmed)) return confirmed;
        const { userId, id } = confirmed.session;
        await latchkey.revokeAllForUser(userId, { except: id });
        return { status: 204, setCookie: confirmed.setCookie };
      }),
    },
    '/api/password': {
      POST: withJson(async (ctx, signedin, body) => {
        const confirmed = await confirmJson(ctx, signedin, body);
        if (!('ok' in confirmed)) return confirmed;
        const signOutOthers = body.signOutOthers !== false;
        const changed = await changePassword(confirmed.session, body.newPassword, signOutOthers);
        if (changed !== true) {
          return jsonReply(400, { error: changed.code, message: changed.message });
        }
        return { status: 204, setCookie: confirmed.setCookie };
      }),
    },
    '/api/account/disable': {
      POST: withJson(async (ctx, signedin, body) => {
        const confirmed = await confirmJson(ctx, signedin, body);
        if (!('ok' in confirmed)) return confirmed;
        await latchkey.disableUser(confirmed.session.userId);
        return { status: 204, ...signedOut() };
      }),
    },
  };
  if (allowSignup) {
    actions['/signup'] = {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, FORM);
        if (!body.ok) return formFailure(body.status);
        const fields = formFields(body.text);
        const next = returnTarget(fields.next);
        const username = keptUsername(fields.username);
        const token = preLoginToken(ctx);
        if (!preLoginTokenValid(ctx, fields.csrf)) {
          const error = 'This form expired. Please try again.';
          const page = signupPage({ csrf: token.csrf, username, next, error });
          return htmlReply(403, page, { setCookie: token.setCookie });
        }
        const credentials = { username: fields.username, password: fields.password };
        const result = await latchkey.signup(credentials, loginContext(ctx));
        if (result.ok) {
          const setCookie = [...result.setCookie, PRE_LOGIN_COOKIE.blank()];
          return redirect(next ?? '/dashboard', { setCookie });
        }
        const page = signupPage({ csrf: token.csrf, username, next, error: result.message });
        return htmlReply(result.error === 'username_taken' ? 409 : 400, page);
      },
    };
    actions['/api/signup'] = {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, JSON_BODY);
        if (!body.ok) return jsonReply(body.status, { error: body.error });
        const credentials = jsonObject(body.text);
        if (!credentials) return jsonReply(400, { error: 'invalid_request' });
        const result = await latchkey.signup(credentials, loginContext(ctx));
        if (!result.ok) {
          const status = result.error === 'username_taken' ? 409 : 400;
          return jsonReply(status, { error: result.error, message: result.message });
        }
        return jsonReply(201, { user: result.user }, { setCookie: result.setCookie });
      },
    };
  }

  /** Sets a new password; true, or why the password cannot be used. */
  async function changePassword(
    session: SessionRecord,
    password: unknown,
    signOutOthers: boolean,
  ): Promise<true | CredentialError> {
    try {
      await latchkey.changePassword(session.userId, password, {
        keepSession: session.id,
        signOutOthers,
      });
      return true;
    } catch (error) {
      if (error instanceof CredentialError) return error;
      throw error;
    }
  }

  /** The request's session, read without falling back to remember-me. */
  async function currentSession(ctx: Context): Promise<SessionRecord | null> {
    const token = latchkey.sessionCookie.read(ctx.cookie).value;
    return token === null ? null : (await latchkey.validate(token)).session;
  }

  /** `DELETE /api/sessions/:id`: only the caller's own sessions; any other id is not found. */
  function deleteApiSession(id: string): Route {
    return withJson(async (ctx, signedin, body) => {
      const target = await ownSession(signedin.session, id);
      if (!target) return jsonReply(404, { error: 'not_found' });
      if (target.id === signedin.session.id) {
        const { setCookie } = await latchkey.endSession(ctx.cookie);
        return { status: 204, setCookie, headers: CLEAR_SITE_DATA };
      }
      const confirmed = await confirmJson(ctx, signedin, body);
      if (!('ok' in confirmed)) return confirmed;
      await latchkey.revoke(target.id);
      return { status: 204, setCookie: confirmed.setCookie };
    });
  }

  /** The one dispatch point for unsafe methods: the Origin check happens here, for every route. */
  async function dispatchAction(ctx: Context): Promise<Reply> {
    const host = header(ctx.req, 'host');
    const hostAllowed = host !== null && (!loopbackOnly || isLoopbackHost(host));
    if (!hostAllowed || !isSameOrigin(originHeaders(ctx), expectedOrigin(ctx))) {
      if (isApi(ctx.path)) return jsonReply(403, { error: 'cross_origin_request' });
      return htmlReply(403, messagePage('Forbidden', 'This request came from another site.'));
    }
    if (isApi(ctx.path) && hasNonJsonBody(ctx.req)) {
      return jsonReply(415, { error: 'unsupported_media_type' });
    }
    const sessionId = /^\/api\/sessions\/([A-Za-z0-9_-]{1,128})$/.exec(ctx.path)?.[1];
    if (sessionId !== undefined && sessionId !== 'revoke-others') {
      return ctx.method === 'DELETE'
        ? deleteApiSession(sessionId)(ctx)
        : notAllowed(ctx, 'GET, DELETE');
    }
    const route = actions[ctx.path]?.[ctx.method];
    if (route) return route(ctx);
    return notAllowedOrMissing(ctx);
  }

  function expectedOrigin(ctx: Context): string {
    return `${https ? 'https' : 'http'}://${header(ctx.req, 'host') ?? ''}`;
  }

  function notAllowedOrMissing(ctx: Context): Reply {
    const allowed = [
      ...(pages[ctx.path] ? ['GET', 'HEAD'] : []),
      ...Object.keys(actions[ctx.path] ?? {}),
    ];
    return allowed.length > 0 ? notAllowed(ctx, allowed.join(', ')) : notFound(ctx);
  }

  async function route(ctx: Context): Promise<Reply> {
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      const page = pages[ctx.path];
      if (page) return page(ctx);
      if (/^\/api\/sessions\/[^/]+$/.test(ctx.path)) return notAllowed(ctx, 'DELETE');
      return notAllowedOrMissing(ctx);
    }
    return dispatchAction(ctx);
  }

  return async function handleRequest(req, res) {
    const ctx = contextOf(req, trustedProxies);
    let reply: Reply;
    try {
      reply = ctx ? await route(ctx) : jsonReply(400, { error: 'invalid_request' });
    } catch (error) {
      reply = failure(ctx?.path ?? '/', error, options.onError);
    }
    send(res, https ? { ...reply, headers: { ...HSTS, ...reply.headers } } : reply);
  };
}

/** A JSON object body if one was sent, `{}` for none, or the error reply. */
async function optionalJson(
  ctx: Context,
): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; reply: Reply }> {
  if (!hasBody(ctx.req)) return { ok: true, value: {} };
  const body = await readBody(ctx.req, JSON_BODY);
  if (!body.ok) return { ok: false, reply: jsonReply(body.status, { error: body.error }) };
  const value = jsonObject(body.text);
  if (value === null) return { ok: false, reply: jsonReply(400, { error: 'invalid_request' }) };
  return { ok: true, value };
}

function hasBody(req: IncomingMessage): boolean {
  return (
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0
  );
}

/** A body, or a content type, that is not JSON: a cross-site form or `text/plain` post. */
function hasNonJsonBody(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return type === '' ? hasBody(req) : type !== JSON_BODY;
}

/** `localhost`, `127.x.y.z` or `[::1]`, with or without a port. */
function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/:\d+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127(\.\d{1,3}){3}$/.test(name);
}

function originHeaders(ctx: Context) {
  return {
    method: ctx.method,
    origin: header(ctx.req, 'origin'),
    referer: header(ctx.req, 'referer'),
    secFetchSite: header(ctx.req, 'sec-fetch-site'),
  };
}

function loginFailure(result: LoginResult & { ok: false }): { status: number; message: string } {
  if (result.error === 'too_many_attempts') {
    return { status: 429, message: tooMany(result.retryAfterSeconds) };
  }
  if (result.error === 'invalid_request') {
    return { status: 400, message: 'Enter your username and password.' };
  }
  return { status: 401, message: LOGIN_FAILED };
}

function retryAfterOf(result: LoginResult & { ok: false }): Record<string, string> {
  return result.error === 'too_many_attempts' ? retryAfterIn(result.retryAfterSeconds) : {};
}

function retryAfterIn(seconds: number): Record<string, string> {
  return { 'retry-after': String(seconds) };
}

function throttledJson(seconds: number): Reply {
  return jsonReply(429, { error: 'too_many_attempts' }, { headers: retryAfterIn(seconds) });
}

function tooMany(seconds: number): string {
  return `Too many attempts. Try again in ${seconds} second${seconds === 1 ? '' : 's'}.`;
}

function csrfFailure(viewer: Viewer, setCookie: readonly string[]): Reply {
  const page = messagePage(
    'Form expired',
    'This form is no longer valid. Go back, reload the page and try again.',
    viewer,
  );
  return htmlReply(403, page, { setCookie });
}

function contextOf(req: IncomingMessage, trustedProxies: ReadonlySet<string>): Context | null {
  const target = req.url ?? '/';
  if (!target.startsWith('/') || target.startsWith('//')) return null;
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  return {
    req,
    method: req.method ?? 'GET',
    path,
    query: new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1)),
    ip: clientIp(req, trustedProxies),
    cookie: header(req, 'cookie'),
  };
}

function isSignedin(value: Signedin | Reply): value is Signedin {
  return 'session' in value;
}

/** A top-level navigation from another site: SameSite=Strict kept the cookie out. */
function isCrossSiteNavigation(ctx: Context): boolean {
  return (
    ctx.method === 'GET' &&
    header(ctx.req, 'sec-fetch-site') === 'cross-site' &&
    header(ctx.req, 'sec-fetch-mode') === 'navigate' &&
    !ctx.query.has(RENAVIGATED)
  );
}

/** The request target without the re-navigation marker, so `next` after login is clean. */
function withoutMarker(ctx: Context): string {
  if (!ctx.query.has(RENAVIGATED)) return ctx.req.url ?? '/';
  const query = new URLSearchParams(ctx.query);
  query.delete(RENAVIGATED);
  return query.size > 0 ? `${ctx.path}?${query}` : ctx.path;
}

function sessionView(session: SessionRecord) {
  return {
    id: session.id,
    createdAt: new Date(session.createdAt).toISOString(),
    lastSeenAt: new Date(session.lastSeenAt).toISOString(),
    authenticatedAt: new Date(session.authenticatedAt).toISOString(),
    idleExpiresAt: new Date(session.idleExpiresAt).toISOString(),
    absoluteExpiresAt: new Date(session.absoluteExpiresAt).toISOString(),
    ip: session.ip,
    userAgent: session.userAgent,
  };
}

/** The username to put back in the form after a failure: the password never is. */
function keptUsername(value: string | undefined): string {
  return typeof value === 'string' ? value.slice(0, 256) : '';
}

function formFailure(status: 400 | 413 | 415): Reply {
  const messages = {
    400: 'The form could not be read.',
    413: 'The form is too large.',
    415: 'Send the form as application/x-www-form-urlencoded.',
  };
  return htmlReply(status, messagePage('Bad request', messages[status]), {
    headers: status === 413 ? { connection: 'close' } : {},
  });
}

function notFound(ctx: Context): Reply {
  if (isApi(ctx.path)) return jsonReply(404, { error: 'not_found' });
  return htmlReply(404, messagePage('Not found', 'There is no page at this address.'));
}

function notAllowed(ctx: Context, allow: string): Reply {
  const headers = { allow };
  if (isApi(ctx.path)) return jsonReply(405, { error: 'method_not_allowed' }, { headers });
  return htmlReply(405, messagePage('Method not allowed', 'This page does not accept that.'), {
    headers,
  });
}

/** A store outage is a 503 to retry; anything else a 500 that reveals nothing. */
function failure(path: string, error: unknown, onError?: (error: unknown) => void): Reply {
  if (error instanceof StoreUnavailableError) {
    const headers = retryAfter();
    if (isApi(path)) return jsonReply(503, { error: 'unavailable' }, { headers });
    const page = messagePage(
      'Unavailable',
      'Sign-in is temporarily unavailable. Please retry shortly.',
    );
    return htmlReply(503, page, { headers });
  }
  if (onError) onError(error);
  else {
    process.stderr.write(
      `latchkey: request failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
  }
  if (isApi(path)) return jsonReply(500, { error: 'internal_error' });
  return htmlReply(500, messagePage('Something went wrong', 'Please try again.'));
}

/**
 * The login page's return address: `?next=`, or `?rd=` (forward-auth proxies). nginx cannot
 * URL-encode, so an `rd` that starts with `http://` or `https://` is the rest of the query as sent.
 */
function nextOf(ctx: Context): string | null {
  const next = ctx.query.get('next');
  if (next !== null) return next;
  const target = ctx.req.url ?? '';
  const raw = /[?&]rd=(https?:\/\/.*)$/i.exec(target)?.[1];
  return raw ?? ctx.query.get('rd');
}

/**
 * Where a browser may be sent after login: a same-origin path ({@link safeNextPath}), or an
 * absolute http(s) URL whose host is in `hosts` (`host` matches any port, `host:port` one port;
 * https only when browsers reach us over HTTPS). Anything else is null: never an open redirect.
 */
export function returnTargets(
  hosts: readonly string[],
  https: boolean,
): (value: string | null | undefined) => string | null {
  const allowed = new Set(hosts.map((host) => host.toLowerCase()));
  return (value) => {
    const path = safeNextPath(value);
    if (path !== null || allowed.size === 0 || typeof value !== 'string') return path;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
    if (value.length > 2048 || /[\u0000-\u001f\u007f\\]/.test(value)) return null;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return null;
    }
    if (url.protocol !== 'https:' && (https || url.protocol !== 'http:')) return null;
    if (url.username !== '' || url.password !== '') return null;
    if (!allowed.has(url.host) && !allowed.has(url.hostname)) return null;
    return url.href;
  };
}

function retryAfter(): Record<string, string> {
  return { 'retry-after': String(RETRY_AFTER_SECONDS) };
}

function isApi(path: string): boolean {
  return path === '/api' || path.startsWith('/api/');
}

function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' ? value : null;
}

/**
 * The client's address: the socket peer, or, when that peer is a trusted proxy, the nearest
 * `X-Forwarded-For` entry that is not itself a trusted proxy.
 */
export function clientIp(req: IncomingMessage, trustedProxies: ReadonlySet<string>): string | null {
  const peer = normalizeIp(req.socket.remoteAddress);
  if (peer === null || !trustedProxies.has(peer)) return peer;
  const forwarded = (header(req, 'x-forwarded-for') ?? '').split(',').map(normalizeIp);
  for (let i = forwarded.length - 1; i >= 0; i--) {
    const hop = forwarded[i];
    if (hop === null || hop === undefined) return peer;
    if (!trustedProxies.has(hop)) return hop;
  }
  return peer;
}

/** A valid IP address, with IPv4-mapped IPv6 (`::ffff:1.2.3.4`) written as IPv4; else null. */
export function normalizeIp(value: string | undefined): string | null {
  const address = value?.trim().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '') ?? '';
  return isIP(address) === 0 ? null : address.toLowerCase();
}
