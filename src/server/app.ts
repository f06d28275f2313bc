import type { IncomingMessage, ServerResponse } from 'node:http';
import { UNSAFE_IN_PATH } from '../http/shared.js';
import {
  type CsrfTokens,
  isSameOrigin,
  type Latchkey,
  type SessionStore,
  safeNextPath,
  type UserStore,
} from '../index.js';
import { Actions } from './actions.js';
import { crossOrigin, failure, notAllowed, notFound } from './answers.js';
import { jsonReply, type Reply, send } from './http.js';
import {
  type Context,
  contextOf,
  hasNonJsonBody,
  header,
  isApi,
  isLoopback,
  originHeaders,
} from './request.js';
import { apiRoutes, revokeSessionRoute } from './routes/api.js';
import { formRoutes } from './routes/forms.js';
import { opsRoutes } from './routes/ops.js';
import { pageRoutes } from './routes/pages.js';
import { passkeyRoutes } from './routes/passkeys.js';
import { twoFactorRoutes } from './routes/two-factor.js';
import { type AuthObserver, type Routes, Site } from './site.js';
import { TwoFactorActions } from './two-factor-actions.js';

export interface AppOptions {
  readonly latchkey: Latchkey;
  /** Probed by `/readyz`. */
  readonly store: SessionStore;
  /** Probed by `/readyz` too, when users live in a store of their own. */
  readonly users?: UserStore;
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
  /** Forward-auth hosts whose sessions need a second factor (`--forward-auth-policy`). */
  readonly twoFactorHosts?: readonly string[];
  /** Told how authentications and logins end (the server's metrics and access log). */
  readonly observer?: AuthObserver;
  /** Told about a request that failed unexpectedly (a 500); by default written to stderr. */
  readonly onError?: (error: unknown) => void;
  /** The time pages show relative times from ("5 minutes ago"); `Date.now` by default. */
  readonly clock?: () => number;
  /** The request's id, sent as `X-Request-Id` on its response (the access log's id). */
  readonly requestId?: (req: IncomingMessage) => string | undefined;
}

const HSTS = { 'strict-transport-security': 'max-age=31536000; includeSubDomains' };
const SESSION_PATH = /^\/api\/sessions\/([A-Za-z0-9_-]{1,128})$/;

/** The reference server's request handler: HTML pages, the JSON API and health checks. */
export function createApp(
  options: AppOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { trustedProxies, https, loopbackOnly } = options;
  const site = new Site({
    latchkey: options.latchkey,
    csrf: options.csrf,
    allowSignup: options.allowSignup,
    returnTarget: returnTargets(
      [...(options.forwardAuthHosts ?? []), ...(options.twoFactorHosts ?? [])],
      https,
    ),
    observer: options.observer,
    twoFactorHosts: new Set(options.twoFactorHosts),
    clock: options.clock,
  });
  const actions = new Actions(site);
  const twoFactor = options.latchkey.secondFactors ? new TwoFactorActions(site) : null;
  const { passkeys } = options.latchkey;
  const routes = merge(
    pageRoutes(site),
    formRoutes(site, actions),
    apiRoutes(site, actions),
    opsRoutes(site, options.store, options.users),
    twoFactor ? twoFactorRoutes(site, twoFactor) : {},
    twoFactor && passkeys ? passkeyRoutes(site, twoFactor, passkeys) : {},
  );
  const revokeSession = revokeSessionRoute(site, actions);
  const commonHeaders = https ? HSTS : {};

  function notAllowedOrMissing(ctx: Context): Reply {
    const methods = Object.keys(routes[ctx.path] ?? {});
    const allowed = methods.flatMap((method) => (method === 'GET' ? ['GET', 'HEAD'] : [method]));
    return allowed.length > 0 ? notAllowed(ctx.path, allowed.join(', ')) : notFound(ctx.path);
  }

  /** The one dispatch point for unsafe methods: the Origin check happens here, for every route. */
  async function dispatchUnsafe(ctx: Context): Promise<Reply> {
    const host = header(ctx.req, 'host');
    const expected = `${https ? 'https' : 'http'}://${host ?? ''}`;
    const hostAllowed = host !== null && (!loopbackOnly || isLoopback(host));
    if (!hostAllowed || !isSameOrigin(originHeaders(ctx), expected)) return crossOrigin(ctx.path);
    if (isApi(ctx.path) && hasNonJsonBody(ctx.req)) {
      return jsonReply(415, { error: 'unsupported_media_type' });
    }
    const sessionId = SESSION_PATH.exec(ctx.path)?.[1];
    if (sessionId !== undefined && sessionId !== 'revoke-others') {
      return ctx.method === 'DELETE'
        ? revokeSession(sessionId)(ctx)
        : notAllowed(ctx.path, 'GET, DELETE');
    }
    const route = routes[ctx.path]?.[ctx.method];
    return route ? route(ctx) : notAllowedOrMissing(ctx);
  }

  async function dispatch(ctx: Context): Promise<Reply> {
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      const page = routes[ctx.path]?.GET;
      if (page) return page(ctx);
      if (/^\/api\/sessions\/[^/]+$/.test(ctx.path)) return notAllowed(ctx.path, 'DELETE');
      return notAllowedOrMissing(ctx);
    }
    return dispatchUnsafe(ctx);
  }

  return async function handleRequest(req, res) {
    const ctx = contextOf(req, trustedProxies);
    let reply: Reply;
    try {
      reply = ctx ? await dispatch(ctx) : jsonReply(400, { error: 'invalid_request' });
    } catch (error) {
      reply = failure(ctx?.path ?? '/', error, options.onError);
    }
    const id = options.requestId?.(req);
    send(res, reply, id === undefined ? commonHeaders : { ...commonHeaders, 'x-request-id': id });
  };
}

/** One table from several: a path may have its page in one and its form post in another. */
function merge(...tables: Routes[]): Routes {
  const merged: Routes = {};
  for (const table of tables) {
    for (const [path, methods] of Object.entries(table)) {
      merged[path] = { ...merged[path], ...methods };
    }
  }
  return merged;
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
    if (value.length > 2048 || UNSAFE_IN_PATH.test(value)) return null;
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
