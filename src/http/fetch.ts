import type { StoreUnavailableError } from '../core/errors.js';
import type { Credentials, Latchkey, LoginContext, LoginResult } from '../core/latchkey.js';
import type { LoggedIn, SecondFactorFailure, SecondFactorProof } from '../core/second-step.js';
import type { JsonObject } from '../core/store.js';
import {
  type Auth,
  authOf,
  type RegisteredUser,
  type RequireOptions,
  requestInfoOf,
  requireOptions,
  toResponse,
} from './shared.js';

export type { Auth, RegisteredUser, RequireOptions } from './shared.js';

export type FetchAuthentication<User extends JsonObject = RegisteredUser> =
  | {
      readonly ok: true;
      readonly auth: Auth<User>;
      /** Put these on the response ({@link withCookies}): set when a remember-me cookie was used. */
      readonly setCookie: readonly string[];
    }
  | {
      readonly ok: false;
      readonly auth: null;
      /**
       * The core's answer (303 to login, 401 JSON or 503 + Retry-After; with `aal`, 303 to the
       * second-factor step or 401 `second_factor_required`), cookies included.
       */
      readonly response: Response;
    };

/** Anything with `get(name)` over request headers: `Headers`, or Next's `await headers()`. */
export interface HeaderReader {
  get(name: string): string | null;
}

/**
 * Authenticates a Web `Request` where the response can carry cookies (route handlers, Next's
 * `proxy.ts`): refreshes the session, or restores one from a remember-me cookie (then
 * `setCookie` holds the new cookies). On failure, gives the response to return as is. `ip` is
 * recorded on a restored session: the Fetch API does not know the client's address. With
 * `aal: 2`, a level-1 session fails too, with the answer that sends it to the second factor.
 */
export async function authenticate<User extends JsonObject = RegisteredUser>(
  latchkey: Latchkey,
  request: Request,
  context: { ip?: string | null } & RequireOptions = {},
): Promise<FetchAuthentication<User>> {
  const { aal } = requireOptions(context);
  const userAgent = request.headers.get('user-agent');
  const info = { ...requestInfoOf(request), ip: context.ip ?? null, userAgent };
  const result = await latchkey.authenticate(info);
  if (!result.ok) {
    return { ok: false, auth: null, response: toResponse(result.denial, result.setCookie) };
  }
  const denial = aal === undefined ? null : latchkey.requireAal(result.session, aal, info);
  if (denial) return { ok: false, auth: null, response: toResponse(denial, result.setCookie) };
  return { ok: true, auth: authOf<User>(result.session), setCookie: result.setCookie };
}

/**
 * Reads the session while rendering (a Server Component), where no cookie can be set: never
 * refreshes, never deletes, never writes. Null when there is no live session. Throws
 * {@link StoreUnavailableError} when the store cannot answer (fail closed, not "logged out").
 */
export async function readSession<User extends JsonObject = RegisteredUser>(
  latchkey: Latchkey,
  headers: HeaderReader,
): Promise<Auth<User> | null> {
  const token = latchkey.sessionCookie.read(headers.get('cookie')).value;
  const session = token === null ? null : await latchkey.peek(token);
  if (!session) return null;
  return authOf<User>(session);
}

/**
 * Checks credentials and starts a session; any session the request carried is ended. On success,
 * and on `second_factor_required` (the pending login's cookie, for {@link completeLogin}), put
 * `result.setCookie` on the response ({@link withCookies}).
 */
export function login(
  latchkey: Latchkey,
  request: Request,
  credentials: Credentials,
  context: { ip?: string | null } = {},
): Promise<LoginResult> {
  return latchkey.login(credentials, contextOf(request, context));
}

/**
 * Completes the request's pending login with a second factor: the session starts at assurance
 * level 2. Put `result.setCookie` on the response either way ({@link withCookies}): it starts
 * the session, or ends the pending login. Needs `secondFactor`.
 */
export function completeLogin(
  latchkey: Latchkey,
  request: Request,
  proof: SecondFactorProof,
  context: { ip?: string | null } = {},
): Promise<LoggedIn | SecondFactorFailure> {
  return latchkey.completeLogin(proof, contextOf(request, context));
}

function contextOf(request: Request, context: { ip?: string | null }): LoginContext {
  const userAgent = request.headers.get('user-agent');
  return { ip: context.ip ?? null, userAgent, cookie: request.headers.get('cookie') };
}

/** Ends the request's session; gives the cookie that clears it in the browser. */
export async function logout(latchkey: Latchkey, request: Request): Promise<readonly string[]> {
  const { setCookie } = await latchkey.endSession(request.headers.get('cookie'));
  return setCookie;
}

/** Adds `Set-Cookie` values to a response, copying it first when its headers are immutable. */
export function withCookies(response: Response, setCookie: readonly string[]): Response {
  if (setCookie.length === 0) return response;
  let target = response;
  try {
    target.headers.append('set-cookie', setCookie[0] as string);
  } catch {
    target = new Response(response.body, response);
    target.headers.append('set-cookie', setCookie[0] as string);
  }
  for (const value of setCookie.slice(1)) target.headers.append('set-cookie', value);
  return target;
}
