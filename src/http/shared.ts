import { ConfigError } from '../core/errors.js';
import type { Authentication, Latchkey } from '../core/latchkey.js';
import type { Credentials, LoginContext, LoginResult } from '../core/login-types.js';
import type { LoggedIn, SecondFactorFailure, SecondFactorProof } from '../core/second-step.js';
import type { AssuranceLevel, JsonObject, SessionRecord } from '../core/store.js';

// HTTP presentation shared by every adapter: what latchkey reads from a request, how a request
// without a session is answered (303 / 401 / 503), and the per-request state of the middlewares.

declare global {
  /**
   * Augment once to type the user snapshot in every adapter (`req.auth.user` in Express,
   * `request.auth.user` in Fastify, the default `User` of Hono and Fetch):
   * `declare global { interface LatchkeyRegister { user: { id: string; name: string } } }`
   */
  interface LatchkeyRegister {}
}

/** The app's registered user snapshot type, or `JsonObject` when it registered none. */
export type RegisteredUser = LatchkeyRegister extends { user: infer User extends JsonObject }
  ? User
  : JsonObject;

/**
 * Who is making a request: the session and the user snapshot kept in it. `User` is the shape of
 * the snapshot the app stores at login; latchkey does not check it, the app vouches for it.
 */
export interface Auth<User extends JsonObject = RegisteredUser> {
  readonly user: User;
  readonly session: SessionRecord;
}

/** The parts of an HTTP request latchkey reads; adapters fill it from their framework. */
export interface RequestInfo {
  readonly method: string;
  /** Request target: a path with query (`/a?b=1`) or an absolute URL. */
  readonly url: string;
  readonly cookie: string | null;
  readonly accept: string | null;
  readonly secFetchMode: string | null;
  /** Recorded on a session restored from a remember-me cookie. */
  readonly ip?: string | null;
  readonly userAgent?: string | null;
}

/** A framework-free HTTP answer for a request that may not proceed. */
export interface Denial {
  readonly status: 303 | 401 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Why a request has no session: a cookie problem, or the store could not answer. */
export type DenialReason = 'missing' | 'malformed' | 'not_found' | 'expired' | 'unavailable';

/** Seconds a client should wait before retrying while the store is down. */
export const RETRY_AFTER_SECONDS = 5;

/** Control characters and backslashes: never part of a path latchkey redirects to. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
export const UNSAFE_IN_PATH = /[\u0000-\u001f\u007f\\]/;
/** One character (a code point, or a lone surrogate) that a header value cannot hold as is. */
const NOT_PRINTABLE_ASCII = /[^\x21-\x7e]/gu;
const LONE_SURROGATE = /^[\ud800-\udfff]$/;

/** A value of at least 43 base64url characters: shaped like a token latchkey issues. */
const TOKEN_LIKE = /[A-Za-z0-9_-]{43}/;

const UNAVAILABLE_JSON: Denial = Object.freeze({
  status: 503,
  headers: Object.freeze({
    'cache-control': 'no-store',
    'retry-after': String(RETRY_AFTER_SECONDS),
    'content-type': 'application/json',
  }),
  body: '{"error":"unavailable"}',
});
const UNAVAILABLE_HTML: Denial = Object.freeze({
  status: 503,
  headers: Object.freeze({
    'cache-control': 'no-store',
    'retry-after': String(RETRY_AFTER_SECONDS),
    'content-type': 'text/html; charset=utf-8',
  }),
  body: '<!doctype html><title>Unavailable</title><p>Sign-in is temporarily unavailable. Please retry shortly.</p>',
});
const UNAUTHENTICATED: Denial = Object.freeze({
  status: 401,
  headers: Object.freeze({ 'cache-control': 'no-store', 'content-type': 'application/json' }),
  body: '{"error":"unauthenticated"}',
});

/**
 * The answer to a request without a session: 303 to `loginPath` (with a safe `next`) for HTML
 * navigations, 401 JSON for API calls, 503 with Retry-After when the store is down.
 */
export function denialFor(info: RequestInfo, reason: DenialReason, loginPath: string): Denial {
  const html = wantsHtml(info);
  if (reason === 'unavailable') return html ? UNAVAILABLE_HTML : UNAVAILABLE_JSON;
  if (!html) return UNAUTHENTICATED;
  const target = info.method === 'GET' || info.method === 'HEAD' ? pathOf(info.url) : null;
  const next = safeNextPath(target && withoutTokenLikeParams(target));
  const location =
    next && next !== loginPath ? `${loginPath}?next=${encodeURIComponent(next)}` : loginPath;
  return {
    status: 303,
    headers: { 'cache-control': 'no-store', location, 'content-type': 'text/html; charset=utf-8' },
    body: `<!doctype html><title>Sign in</title><p><a href="${escapeHtml(location)}">Sign in</a> to continue.</p>`,
  };
}

const SECOND_FACTOR_REQUIRED: Denial = Object.freeze({
  status: 401,
  headers: Object.freeze({ 'cache-control': 'no-store', 'content-type': 'application/json' }),
  body: '{"error":"second_factor_required"}',
});

/**
 * The answer to a request whose session lacks the assurance level it needs: 303 to
 * `secondFactorPath` (with a safe `next`) for HTML navigations, 401 JSON for API calls.
 */
export function secondFactorDenial(info: RequestInfo, secondFactorPath: string): Denial {
  if (!wantsHtml(info)) return SECOND_FACTOR_REQUIRED;
  const target = info.method === 'GET' || info.method === 'HEAD' ? pathOf(info.url) : null;
  const next = safeNextPath(target && withoutTokenLikeParams(target));
  const location = next ? `${secondFactorPath}?next=${encodeURIComponent(next)}` : secondFactorPath;
  return {
    status: 303,
    headers: { 'cache-control': 'no-store', location, 'content-type': 'text/html; charset=utf-8' },
    body: `<!doctype html><title>Second factor</title><p><a href="${escapeHtml(location)}">Confirm it is you</a> to continue.</p>`,
  };
}

/** A browser navigation or page load, as opposed to an API call. */
export function wantsHtml(info: RequestInfo): boolean {
  const accept = info.accept ?? '';
  if (accept.includes('application/json')) return false;
  if (info.secFetchMode === 'navigate' || accept.includes('text/html')) return true;
  return (info.method === 'GET' || info.method === 'HEAD') && info.secFetchMode === null;
}

/** Reads what latchkey needs from a Web `Request`. */
export function requestInfoOf(request: Request): RequestInfo {
  return {
    method: request.method,
    url: request.url,
    cookie: request.headers.get('cookie'),
    accept: request.headers.get('accept'),
    secFetchMode: request.headers.get('sec-fetch-mode'),
  };
}

/** A Web `Response` for a denial, with any cookies to set. */
export function toResponse(denial: Denial, setCookie: readonly string[] = []): Response {
  const headers = new Headers(denial.headers);
  for (const value of setCookie) headers.append('set-cookie', value);
  return new Response(denial.body, { status: denial.status, headers });
}

/**
 * A same-origin path to return to after login, ready for a `Location` header, or null. Only a
 * path that starts with one `/` qualifies: `//host`, backslashes (`/\host`), schemes, control
 * characters and oversize values are dropped. Anything outside printable ASCII is
 * percent-encoded as UTF-8 (`/Ā` → `/%C4%80`), since a header cannot carry it.
 */
export function safeNextPath(value: string | null | undefined): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return null;
  if (!value.startsWith('/') || value.startsWith('//')) return null;
  return UNSAFE_IN_PATH.test(value) ? null : percentEncodeNonAscii(value);
}

/**
 * `text` with every character outside printable ASCII percent-encoded as UTF-8; a lone
 * surrogate becomes U+FFFD (`%EF%BF%BD`). Already-encoded `%XX` is left alone.
 */
function percentEncodeNonAscii(text: string): string {
  return text.replace(NOT_PRINTABLE_ASCII, (char) =>
    encodeURIComponent(LONE_SURROGATE.test(char) ? '\ufffd' : char),
  );
}

/**
 * The path without query parameters whose value holds something shaped like a token: a token
 * pasted into a URL (`?sid=…`) is never written back into a redirect.
 */
export function withoutTokenLikeParams(path: string): string {
  const queryAt = path.indexOf('?');
  if (queryAt === -1) return path;
  const query = new URLSearchParams(path.slice(queryAt + 1));
  for (const [name, value] of [...query]) {
    if (TOKEN_LIKE.test(value)) query.delete(name);
  }
  const rest = query.toString();
  return rest ? `${path.slice(0, queryAt)}?${rest}` : path.slice(0, queryAt);
}

/** Text made safe to put in HTML, in element content and in quoted attributes alike. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The path and query of a request target, which may be an absolute URL. */
function pathOf(target: string): string | null {
  if (target.startsWith('/')) return target;
  try {
    const url = new URL(target);
    return url.pathname + url.search;
  } catch {
    return null;
  }
}

/** `session` as the adapters hand it to the app. */
export function authOf<User extends JsonObject = RegisteredUser>(
  session: SessionRecord,
): Auth<User> {
  // The snapshot is what the app stored at login; `User` is the app's word for its shape.
  return { user: session.user as User, session };
}

/** What a middleware learnt about one request, for its guard and its login and logout helpers. */
export interface RequestState {
  readonly latchkey: Latchkey;
  /** The request as the middleware read it. */
  readonly info: RequestInfo;
  /** Why the request has no session (the core's own answer), or null when it has one. */
  denial: Denial | null;
}

/**
 * The Express, Fastify and Hono adapters' per-request states, beside the framework's request
 * object (never on it). `setup` says what the app must do when a guard runs without the middleware.
 */
export class RequestStates<Key extends object> {
  private readonly states = new WeakMap<Key, RequestState>();

  constructor(private readonly setup: string) {}

  /** Keeps what the middleware's `latchkey.authenticate(info)` answered. */
  record(key: Key, latchkey: Latchkey, info: RequestInfo, result: Authentication): void {
    this.states.set(key, { latchkey, info, denial: result.ok ? null : result.denial });
  }

  /** The request's state; a {@link ConfigError} saying what to mount when the middleware did not run. */
  of(key: Key): RequestState {
    const state = this.states.get(key);
    if (state) return state;
    throw new ConfigError(this.setup);
  }

  find(key: Key): RequestState | undefined {
    return this.states.get(key);
  }
}

/** What a guard asks of a request's session, beyond having one. */
export interface RequireOptions {
  /**
   * The assurance level the route needs. With `2`, a level-1 session is sent to the second-factor
   * step (303 to `secondFactorPath` with `next` for pages, 401 `second_factor_required` for APIs).
   */
  readonly aal?: AssuranceLevel;
}

/** `options` checked when the guard is made, so a typo fails at startup, not on every request. */
export function requireOptions(options: RequireOptions = {}): RequireOptions {
  const { aal } = options;
  if (aal !== undefined && aal !== 1 && aal !== 2) {
    throw new ConfigError('aal: must be 1 or 2');
  }
  return options;
}

/**
 * What a guard answers: the denial for a request without a session ({@link denialOf}), the
 * core's `requireAal` answer for a session below the level `options` ask for, else null.
 */
export async function guardDenial(
  state: RequestState,
  session: SessionRecord | null,
  options: RequireOptions,
): Promise<Denial | null> {
  if (!session) return denialOf(state);
  if (options.aal === undefined) return null;
  return state.latchkey.requireAal(session, options.aal, state.info);
}

/**
 * What a guard answers a request without `auth`: the middleware's denial, or the core's answer
 * now when the session ended during this request (logout). Null lets the request through.
 */
export async function denialOf(state: RequestState): Promise<Denial | null> {
  if (state.denial) return state.denial;
  const result = await state.latchkey.authenticate(state.info);
  return result.ok ? null : result.denial;
}

/** Logs in through `latchkey`; a success clears the request's denial, so its guard lets it through. */
export async function loginFor(
  latchkey: Latchkey,
  state: RequestState | undefined,
  credentials: Credentials,
  context: LoginContext,
): Promise<LoginResult> {
  const result = await latchkey.login(credentials, context);
  if (result.ok && state) state.denial = null;
  return result;
}

/**
 * The cookies a login result asks to set: the session's on success, the pending login's on
 * `second_factor_required` (the browser must keep it for the second step), none otherwise.
 */
export function loginCookies(result: LoginResult): readonly string[] {
  return 'setCookie' in result ? result.setCookie : [];
}

/**
 * Completes the request's pending login with a second factor through `latchkey`; a success
 * clears the request's denial, as {@link loginFor} does. Always set the result's `setCookie`:
 * it ends the pending login, or starts the session.
 */
export async function completeLoginFor(
  latchkey: Latchkey,
  state: RequestState | undefined,
  proof: SecondFactorProof,
  context: LoginContext,
): Promise<LoggedIn | SecondFactorFailure> {
  const result = await latchkey.completeLogin(proof, context);
  if (result.ok && state) state.denial = null;
  return result;
}
