import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authentication, Latchkey } from '../core/latchkey.js';
import { type Denial, type RequestInfo, type RequireOptions, requireOptions } from './shared.js';

export type { RequireOptions } from './shared.js';

export type Authenticated = Extract<Authentication, { ok: true }>;

/** What latchkey reads from a `node:http` request. */
export function requestInfo(req: IncomingMessage): RequestInfo {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    cookie: req.headers.cookie ?? null,
    accept: req.headers.accept ?? null,
    secFetchMode: header(req, 'sec-fetch-mode'),
  };
}

/** Adds `Set-Cookie` values without dropping any already set on `res`. */
export function appendSetCookie(res: ServerResponse, values: readonly string[]): void {
  if (values.length === 0) return;
  const existing = res.getHeader('set-cookie');
  const current =
    existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  res.setHeader('set-cookie', [...current, ...values]);
}

/** Writes a denial (303 / 401 / 503) as the whole response. */
export function sendDenial(res: ServerResponse, denial: Denial): void {
  res.writeHead(denial.status, denial.headers);
  res.end(denial.body);
}

/**
 * Authenticates a `node:http` request. Gives the session and user, or answers the request itself
 * (303 to login, 401 JSON or 503) and gives null. With `{ aal: 2 }`, a level-1 session is
 * answered too: 303 to the second-factor step for pages, 401 `second_factor_required` for APIs.
 *
 * ```ts
 * const auth = await authenticate(latchkey, req, res);
 * if (!auth) return;
 * ```
 */
export async function authenticate(
  latchkey: Latchkey,
  req: IncomingMessage,
  res: ServerResponse,
  options?: RequireOptions,
): Promise<Authenticated | null> {
  const { aal } = requireOptions(options);
  const info = requestInfo(req);
  const result = await latchkey.authenticate(info);
  appendSetCookie(res, result.setCookie);
  const denial = result.ok
    ? aal === undefined
      ? null
      : latchkey.requireAal(result.session, aal, info)
    : result.denial;
  if (result.ok && !denial) return result;
  if (denial) sendDenial(res, denial);
  return null;
}

function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' ? value : null;
}
