import type { StoreUnavailableError } from '../core/errors.js';
import type { Credentials, Latchkey, LoginResult } from '../core/latchkey.js';
import type { JsonObject } from '../core/store.js';
import { type Auth, authOf, type RegisteredUser, requestInfoOf, toResponse } from './shared.js';

export type { Auth, RegisteredUser } from './shared.js';

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
      /** The core's answer (303 to login, 401 JSON or 503 + Retry-After), cookies included. */
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
 * recorded on a restored session: the Fetch API does not know the client's address.
 */
export async function authenticate<User extends JsonObject = RegisteredUser>(
  latchkey: Latchkey,
  request: Request,
  context: { ip?: string | null } = {},
): Promise<FetchAuthentication<User>> {
  const userAgent = request.headers.get('user-agent');
  const info = { ...requestInfoOf(request), ip: context.ip ?? null, userAgent };
  const result = await latchkey.authenticate(info);
  if (!result.ok) {
    return { ok: false, auth: null, response: toResponse(result.denial, result.setCookie) };
  }
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
 * put `result.setCookie` on the response ({@link withCookies}).
 */
export function login(
  latchkey: Latchkey,
  request: Request,
  credentials: Credentials,
  context: { ip?: string | null } = {},
): Promise<LoginResult> {
  return latchkey.login(credentials, {
    ip: context.ip ?? null,
    userAgent: request.headers.get('user-agent'),
    cookie: request.headers.get('cookie'),
  });
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
