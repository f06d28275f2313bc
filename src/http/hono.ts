import type { Context, MiddlewareHandler } from 'hono';
import type { Credentials, Latchkey, LoginContext, LoginResult } from '../core/latchkey.js';
import type { LoggedIn, SecondFactorFailure, SecondFactorProof } from '../core/second-step.js';
import type { JsonObject } from '../core/store.js';
import {
  type Auth,
  authOf,
  completeLoginFor,
  guardDenial,
  loginCookies,
  loginFor,
  type RegisteredUser,
  type RequestInfo,
  type RequestState,
  RequestStates,
  type RequireOptions,
  requestInfoOf,
  requireOptions,
} from './shared.js';

export type { Auth, RegisteredUser, RequireOptions } from './shared.js';

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
 * 503 with Retry-After when the store is down). `requireAuth({ aal: 2 })` also sends level-1
 * sessions to the second-factor step.
 */
export function requireAuth<User extends JsonObject = RegisteredUser>(
  options?: RequireOptions,
): MiddlewareHandler<{
  Variables: { auth: Auth<User> };
}> {
  const required = requireOptions(options);
  return async function latchkeyRequireAuth(c, next) {
    const state = states.of(c.req.raw);
    const denial = await guardDenial(state, c.get('auth')?.session ?? null, required);
    if (!denial) return next();
    return c.body(denial.body, denial.status, denial.headers);
  };
}

/**
 * Checks credentials and starts a session: sets the cookie and `c.get('auth')` on success. Any
 * session the request carried is ended first. Records the address from the middleware's `ip`.
 * On `second_factor_required`, sets the pending-login cookie: finish with {@link completeLogin}.
 */
export async function login(c: Context, credentials: Credentials): Promise<LoginResult> {
  const state = states.of(c.req.raw);
  const result = await loginFor(state.latchkey, state, credentials, contextOf(c, state));
  for (const value of loginCookies(result)) c.header('set-cookie', value, { append: true });
  if (result.ok) c.set('auth', authOf(result.session));
  return result;
}

/**
 * Completes the request's pending login with a second factor: the session starts at assurance
 * level 2, with its cookie and `c.get('auth')`. Sets the result's cookies either way (they end
 * the pending login when it is over). Needs `secondFactor`.
 */
export async function completeLogin(
  c: Context,
  proof: SecondFactorProof,
): Promise<LoggedIn | SecondFactorFailure> {
  const state = states.of(c.req.raw);
  const result = await completeLoginFor(state.latchkey, state, proof, contextOf(c, state));
  for (const value of result.setCookie) c.header('set-cookie', value, { append: true });
  if (result.ok) c.set('auth', authOf(result.session));
  return result;
}

/** Ends the request's session and clears its cookie; `c.get('auth')` becomes null. */
export async function logout(c: Context): Promise<void> {
  const state = states.of(c.req.raw);
  const { setCookie } = await state.latchkey.endSession(c.req.header('cookie') ?? null);
  for (const value of setCookie) c.header('set-cookie', value, { append: true });
  c.set('auth', null);
}

function contextOf(c: Context, state: RequestState): LoginContext {
  const userAgent = c.req.header('user-agent') ?? null;
  return { ip: state.info.ip ?? null, userAgent, cookie: c.req.header('cookie') ?? null };
}

function infoOf(c: Context, ip: string | null): RequestInfo {
  return { ...requestInfoOf(c.req.raw), ip, userAgent: c.req.header('user-agent') ?? null };
}
