import type { Context, MiddlewareHandler } from 'hono';
import {
  type Credentials,
  type Denial,
  type Latchkey,
  type LoginResult,
  type RequestInfo,
  requestInfoOf,
} from '../core/latchkey.js';
import type { JsonObject, SessionRecord } from '../core/store.js';
import type { Auth, RegisteredUser } from './fetch.js';

export type { Auth, RegisteredUser } from './fetch.js';

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

/** What the middleware learnt about one request, for the guard and the helpers. */
interface RequestState {
  readonly latchkey: Latchkey;
  readonly ip: string | null;
  /** Why the request has no session (the core's own answer), or null when it has one. */
  denial: Denial | null;
}

const states = new WeakMap<Request, RequestState>();

/**
 * Middleware: authenticates every request (one store read) and sets `c.get('auth')`. Never
 * answers by itself; put {@link requireAuth} on the routes that need a session.
 */
export function authenticate<User extends JsonObject = RegisteredUser>(
  latchkey: Latchkey,
  options: AuthenticateOptions = {},
): MiddlewareHandler<{ Variables: AuthVariables<User> }> {
  return async function latchkeyAuthenticate(c, next) {
    const ip = options.ip?.(c) ?? null;
    const result = await latchkey.authenticate(infoOf(c, ip));
    for (const value of result.setCookie) c.header('set-cookie', value, { append: true });
    c.set('auth', result.ok ? authOf<User>(result.session) : null);
    states.set(c.req.raw, { latchkey, ip, denial: result.ok ? null : result.denial });
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
    const state = stateOf(c);
    if (c.get('auth')) return next();
    // A session ended during this request (logout) has no denial yet: ask the core.
    const denial = state.denial ?? (await denialFor(state.latchkey, c, state.ip));
    if (!denial) return next();
    return c.body(denial.body, denial.status, denial.headers);
  };
}

/**
 * Checks credentials and starts a session: sets the cookie and `c.get('auth')` on success. Any
 * session the request carried is ended first. Records the address from the middleware's `ip`.
 */
export async function login(c: Context, credentials: Credentials): Promise<LoginResult> {
  const state = stateOf(c);
  const result = await state.latchkey.login(credentials, {
    ip: state.ip,
    userAgent: c.req.header('user-agent') ?? null,
    cookie: c.req.header('cookie') ?? null,
  });
  if (result.ok) {
    for (const value of result.setCookie) c.header('set-cookie', value, { append: true });
    c.set('auth', authOf(result.session));
    state.denial = null;
  }
  return result;
}

/** Ends the request's session and clears its cookie; `c.get('auth')` becomes null. */
export async function logout(c: Context): Promise<void> {
  const state = stateOf(c);
  const { setCookie } = await state.latchkey.endSession(c.req.header('cookie') ?? null);
  for (const value of setCookie) c.header('set-cookie', value, { append: true });
  c.set('auth', null);
}

function infoOf(c: Context, ip: string | null): RequestInfo {
  return { ...requestInfoOf(c.req.raw), ip, userAgent: c.req.header('user-agent') ?? null };
}

async function denialFor(
  latchkey: Latchkey,
  c: Context,
  ip: string | null,
): Promise<Denial | null> {
  const result = await latchkey.authenticate(infoOf(c, ip));
  return result.ok ? null : result.denial;
}

function stateOf(c: Context): RequestState {
  const state = states.get(c.req.raw);
  if (state) return state;
  throw new Error('latchkey/hono: app.use(authenticate(latchkey)) must run first');
}

function authOf<User extends JsonObject>(session: SessionRecord): Auth<User> {
  // The snapshot is what the app stored at login; `User` is the app's word for its shape.
  return { user: session.user as User, session };
}
