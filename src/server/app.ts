import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import {
  type Latchkey,
  type LoginContext,
  RETRY_AFTER_SECONDS,
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
  dashboardPage,
  loginPage,
  messagePage,
  type PageUser,
  profilePage,
  renavigatePage,
  sessionsPage,
  signupPage,
  userOf,
} from './pages.js';
import { STYLESHEET } from './style.js';

export interface AppOptions {
  readonly latchkey: Latchkey;
  /** Probed by `/readyz`. */
  readonly store: SessionStore;
  readonly allowSignup: boolean;
  /** Proxy addresses whose `X-Forwarded-For` is believed. */
  readonly trustedProxies: ReadonlySet<string>;
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

type Signedin = { readonly session: SessionRecord; readonly user: PageUser };

/** Query marker of a same-site re-navigation, so it happens at most once per URL. */
const RENAVIGATED = 'renav';
const CLEAR_SITE_DATA = { 'clear-site-data': '"cache", "cookies", "storage"' };
const FORM = 'application/x-www-form-urlencoded';
const JSON_BODY = 'application/json';
const LOGIN_FAILED = 'Incorrect username or password.';

/** The reference server's request handler: HTML pages, the JSON API and health checks. */
export function createApp(
  options: AppOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { latchkey, store, allowSignup, trustedProxies } = options;

  async function pageSession(ctx: Context): Promise<Signedin | Reply> {
    const auth = await latchkey.authenticate({
      method: ctx.method,
      url: withoutMarker(ctx),
      cookie: ctx.cookie,
      accept: header(ctx.req, 'accept'),
      secFetchMode: header(ctx.req, 'sec-fetch-mode'),
    });
    if (auth.ok) return { session: auth.session, user: userOf(auth.user, auth.session.userId) };
    if (auth.reason === 'missing' && isCrossSiteNavigation(ctx)) {
      const marker = `${ctx.query.size > 0 ? '&' : '?'}${RENAVIGATED}=1`;
      return htmlReply(200, renavigatePage(`${ctx.req.url ?? '/'}${marker}`));
    }
    return denialReply(auth.denial, auth.setCookie);
  }

  async function apiSession(ctx: Context): Promise<Signedin | Reply> {
    const auth = await latchkey.authenticate({
      method: ctx.method,
      url: ctx.path,
      cookie: ctx.cookie,
      accept: JSON_BODY,
      secFetchMode: null,
    });
    if (auth.ok) return { session: auth.session, user: userOf(auth.user, auth.session.userId) };
    return denialReply(auth.denial, auth.setCookie);
  }

  function loginContext(ctx: Context): LoginContext {
    return { ip: ctx.ip, userAgent: header(ctx.req, 'user-agent'), cookie: ctx.cookie };
  }

  /** The caller's own session with this id, or null: someone else's id looks unknown. */
  async function ownSession(signedin: Signedin, id: unknown): Promise<SessionRecord | null> {
    if (typeof id !== 'string') return null;
    const sessions = await latchkey.listSessions(signedin.session.userId);
    return sessions.find((session) => session.id === id) ?? null;
  }

  /** Revokes one of the caller's sessions; revoking the current one is a logout. */
  async function revokeOwn(signedin: Signedin, target: SessionRecord): Promise<readonly string[]> {
    await latchkey.revoke(target.id);
    return target.id === signedin.session.id ? [latchkey.sessionCookie.blank()] : [];
  }

  const pages: Record<string, Route> = {
    '/': async (ctx) => {
      const signedin = await pageSession(ctx);
      if (isSignedin(signedin)) return redirect('/dashboard');
      return signedin.status === 303
        ? redirect('/login', { setCookie: signedin.setCookie })
        : signedin;
    },
    '/login': async (ctx) => {
      const next = safeNextPath(ctx.query.get('next'));
      const auth = await latchkey.authenticate(infoFor(ctx));
      if (auth.ok) return redirect(next ?? '/dashboard');
      return htmlReply(200, loginPage({ next, allowSignup }), { setCookie: auth.setCookie });
    },
    '/dashboard': withPage((signedin) => dashboardPage(signedin.user, signedin.session)),
    '/profile': withPage((signedin) => profilePage(signedin.user, signedin.session)),
    '/sessions': withPage(async (signedin) => {
      const sessions = await latchkey.listSessions(signedin.session.userId);
      return sessionsPage(signedin.user, sessions, signedin.session.id);
    }),
    '/api/me': async (ctx) => {
      const signedin = await apiSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      return jsonReply(200, { user: signedin.user, session: sessionView(signedin.session) });
    },
    '/api/sessions': async (ctx) => {
      const signedin = await apiSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      const sessions = await latchkey.listSessions(signedin.session.userId);
      return jsonReply(200, {
        sessions: sessions.map((session) => ({
          ...sessionView(session),
          current: session.id === signedin.session.id,
        })),
      });
    },
    '/healthz': async () => jsonReply(200, { status: 'ok' }),
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
    pages['/signup'] = async (ctx) =>
      htmlReply(200, signupPage({ next: safeNextPath(ctx.query.get('next')) }));
  }

  function withPage(render: (signedin: Signedin) => string | Promise<string>): Route {
    return async (ctx) => {
      const signedin = await pageSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      return htmlReply(200, await render(signedin));
    };
  }

  /** Every state-changing route, by path and method. */
  const actions: Record<string, Record<string, Route>> = {
    '/login': {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, FORM);
        if (!body.ok) return formFailure(body.status);
        const fields = formFields(body.text);
        const next = safeNextPath(fields.next);
        const credentials = { username: fields.username, password: fields.password };
        const result = await latchkey.login(credentials, loginContext(ctx));
        if (result.ok) return redirect(next ?? '/dashboard', { setCookie: result.setCookie });
        const invalid = result.error === 'invalid_request';
        const page = loginPage({
          username: keptUsername(fields.username),
          next,
          error: invalid ? 'Enter your username and password.' : LOGIN_FAILED,
          allowSignup,
        });
        return htmlReply(invalid ? 400 : 401, page);
      },
    },
    '/logout': {
      POST: async (ctx) => {
        const { setCookie } = await latchkey.endSession(ctx.cookie);
        return redirect('/login', { setCookie, headers: CLEAR_SITE_DATA });
      },
    },
    '/sessions/revoke': {
      POST: async (ctx) => {
        const signedin = await pageSession(ctx);
        if (!isSignedin(signedin)) return signedin;
        const body = await readBody(ctx.req, FORM);
        if (!body.ok) return formFailure(body.status);
        const target = await ownSession(signedin, formFields(body.text).id);
        if (!target) {
          return htmlReply(404, messagePage('Not found', 'No such session.', signedin.user));
        }
        const setCookie = await revokeOwn(signedin, target);
        return redirect(setCookie.length > 0 ? '/login' : '/sessions', { setCookie });
      },
    },
    '/sessions/revoke-others': {
      POST: async (ctx) => {
        const signedin = await pageSession(ctx);
        if (!isSignedin(signedin)) return signedin;
        const { userId, id } = signedin.session;
        await latchkey.revokeAllForUser(userId, { except: id });
        return redirect('/sessions');
      },
    },
    '/api/login': {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, JSON_BODY);
        if (!body.ok) return jsonReply(body.status, { error: body.error });
        const credentials = jsonObject(body.text);
        if (!credentials) return jsonReply(400, { error: 'invalid_request' });
        const result = await latchkey.login(credentials, loginContext(ctx));
        if (!result.ok) {
          return jsonReply(result.error === 'invalid_request' ? 400 : 401, { error: result.error });
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
  };
  if (allowSignup) {
    actions['/signup'] = {
      POST: async (ctx) => {
        const body = await readBody(ctx.req, FORM);
        if (!body.ok) return formFailure(body.status);
        const fields = formFields(body.text);
        const next = safeNextPath(fields.next);
        const credentials = { username: fields.username, password: fields.password };
        const result = await latchkey.signup(credentials, loginContext(ctx));
        if (result.ok) return redirect(next ?? '/dashboard', { setCookie: result.setCookie });
        const page = signupPage({
          username: keptUsername(fields.username),
          next,
          error: result.message,
        });
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

  /** `DELETE /api/sessions/:id`: only the caller's own sessions; any other id is not found. */
  async function deleteApiSession(ctx: Context, id: string): Promise<Reply> {
    const signedin = await apiSession(ctx);
    if (!isSignedin(signedin)) return signedin;
    const target = await ownSession(signedin, id);
    if (!target) return jsonReply(404, { error: 'not_found' });
    return { status: 204, setCookie: await revokeOwn(signedin, target) };
  }

  /** The one dispatch point for unsafe methods: Origin and CSRF checks belong here. */
  async function dispatchAction(ctx: Context): Promise<Reply> {
    const sessionId = /^\/api\/sessions\/([A-Za-z0-9_-]{1,128})$/.exec(ctx.path)?.[1];
    if (sessionId !== undefined) {
      return ctx.method === 'DELETE'
        ? deleteApiSession(ctx, sessionId)
        : notAllowed(ctx, 'GET, DELETE');
    }
    const route = actions[ctx.path]?.[ctx.method];
    if (route) return route(ctx);
    return notAllowedOrMissing(ctx);
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
      reply = failure(ctx?.path ?? '/', error);
    }
    send(res, reply);
  };
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

function infoFor(ctx: Context) {
  return {
    method: ctx.method,
    url: ctx.req.url ?? '/',
    cookie: ctx.cookie,
    accept: header(ctx.req, 'accept'),
    secFetchMode: header(ctx.req, 'sec-fetch-mode'),
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
function failure(path: string, error: unknown): Reply {
  if (error instanceof StoreUnavailableError) {
    const headers = retryAfter();
    if (isApi(path)) return jsonReply(503, { error: 'unavailable' }, { headers });
    const page = messagePage(
      'Unavailable',
      'Sign-in is temporarily unavailable. Please retry shortly.',
    );
    return htmlReply(503, page, { headers });
  }
  process.stderr.write(
    `latchkey: request failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  if (isApi(path)) return jsonReply(500, { error: 'internal_error' });
  return htmlReply(500, messagePage('Something went wrong', 'Please try again.'));
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
