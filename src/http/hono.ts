import type { Context, MiddlewareHandler } from 'hono';
import type { Credentials, Latchkey, LoginResult } from '../core/latchkey.js';
import type { JsonObject } from '../core/store.js';
import {
  type Auth,
  authOf,
  denialOf,
  loginFor,
  type RegisteredUser,
  type RequestInfo,
  RequestStates,
  requestInfoOf,
} from './shared.js';

export type { Auth, RegisteredUser } from './shared.js';

/** The context variables this adapter sets: `new Hono<{ Variables: AuthVariables<User> }>()`. */
export interface AuthVariables<User extends JsonObject = RegisteredUser> {
  /** Who is making the request, or null. */
  auth: Auth<User> | null;
}

export interface AuthenticateOptions {
  /**
   * The client's address, recorded on sessions (and used by login throttling): Hono cannot know
   * it on every runtime. On Node: `(c) => getConnInfo(c).remote.address` (`@hono/node-server/conninfo`).
   */
  ip?: (c: Context) => string | null | undefined;
}

const states = new RequestStates<Request>(
  'latchkey/hono: app.use(authenticate(latchkey)) must run first',
);

/**
 * Middleware: authenticates every request (one store read) and sets `c.get('auth')`. Never
 * answers by itself; put {@link requireAuth} on the routes that need a session.
 */
export function authenticate<User extends JsonObject = RegisteredUser>(
  latchkey: Latchkey,
  options: AuthenticateOptions = {},
): MiddlewareHandler<{ Variables: AuthVariables<User> }> {
  return async function latchkeyAuthenticate(c, next) {
    const info = infoOf(c, options.ip?.(c) ?? null);
    const result = await latchkey.authenticate(info);
    for (const value of result.setCookie) c.header('set-cookie', value, { append: true });
    c.set('auth', result.ok ? authOf<User>(result.session) : null);
    states.record(c.req.raw, latchkey, info, result);
    await next();
  };
}

/**
 * Guard: lets requests with a session through, typing `c.get('auth')` as non-null after it;
 * answers the others exactly as the core says (303 to login for pages, 401 JSON for API calls,
 * 503 with Retry-After when the store is down).
 */
export function requireAuth<User extends JsonObject = RegisteredUser>(): MiddlewareHandler<{
  Variables: { auth: Auth<User> };
}> {
  return async function latchkeyRequireAuth(c, next) {
    const state = states.of(c.req.raw);
    if (c.get('auth')) return next();
    const denial = await denialOf(state);
    if (!denial) return next();
    return c.body(denial.body, denial.status, denial.headers);
  };
}

/**
 * Checks credentials and starts a session: sets the cookie and `c.get('auth')` on success. Any
 * session the request carried is ended first. Records the address from the middleware's `ip`.
 */
export async function login(c: Context, credentials: Credentials): Promise<LoginResult> {
  const state = states.of(c.req.raw);
  const result = await loginFor(state.latchkey, state, credentials, {
    ip: state.info.ip ?? null,
    userAgent: c.req.header('user-agent') ?? null,
    cookie: c.req.header('cookie') ?? null,
  });
  if (result.ok) {
    for (const value of result.setCookie) c.header('set-cookie', value, { append: true });
    c.set('auth', authOf(result.session));
  }
  return result;
}

/** Ends the request's session and clears its cookie; `c.get('auth')` becomes null. */
export async function logout(c: Context): Promise<void> {
  const state = states.of(c.req.raw);
  const { setCookie } = await state.latchkey.endSession(c.req.header('cookie') ?? null);
  for (const value of setCookie) c.header('set-cookie', value, { append: true });
  c.set('auth', null);
}

function infoOf(c: Context, ip: string | null): RequestInfo {
  return { ...requestInfoOf(c.req.raw), ip, userAgent: c.req.header('user-agent') ?? null };
}
