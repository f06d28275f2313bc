import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Denial } from '../index.js';

/** A whole response, built by a route and written by {@link send}. */
export interface Reply {
  readonly status: number;
  readonly type?: 'html' | 'json' | 'css' | 'js' | 'text';
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly setCookie?: readonly string[];
  /** Only static assets are cacheable; every other response may carry or depend on a session. */
  readonly cacheable?: boolean;
}

const CONTENT_TYPES = {
  html: 'text/html; charset=utf-8',
  json: 'application/json',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  text: 'text/plain; charset=utf-8',
} as const;

/**
 * Headers on every response. Pages load only /assets from this origin: no inline script or
 * style; the passkey script may call this origin's API (`connect-src`) and nothing else.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // Answers depend on the session cookie and on where the request came from.
  vary: 'Cookie, Sec-Fetch-Site, Origin',
};

/**
 * The one function that writes a response: every header policy lives here. `common` are the
 * headers every response of this server carries (HSTS, the request id); the reply's own win.
 * All go in the one `writeHead`: a header set before it sends every header through `setHeader`.
 */
export function send(
  res: ServerResponse,
  reply: Reply,
  common: Readonly<Record<string, string>> = {},
): void {
  const body = reply.body ?? '';
  // Copied by loops into one object, not spread: spreads cost a new shape per response.
  const headers: OutgoingHttpHeaders = {};
  for (const name in SECURITY_HEADERS) headers[name] = SECURITY_HEADERS[name];
  headers['cache-control'] = reply.cacheable ? 'public, max-age=3600' : 'no-store';
  if (reply.type) headers['content-type'] = CONTENT_TYPES[reply.type];
  for (const name in common) headers[name] = common[name];
  if (reply.headers) for (const name in reply.headers) headers[name] = reply.headers[name];
  headers['content-length'] = Buffer.byteLength(body);
  const setCookie = reply.setCookie && reply.setCookie.length > 0 ? [...reply.setCookie] : null;
  if (setCookie) headers['set-cookie'] = setCookie;
  try {
    res.writeHead(reply.status, headers);
  } catch {
    // A header Node refuses (a character it cannot send) must not lose the cookies: a session
    // created for this reply would otherwise live on with no browser holding it.
    res.writeHead(500, {
      ...SECURITY_HEADERS,
      ...common,
      'cache-control': 'no-store',
      'content-length': 0,
      ...(setCookie ? { 'set-cookie': setCookie } : {}),
    });
    res.end();
    return;
  }
  res.end(body);
}

export function htmlReply(status: number, body: string, extra: Partial<Reply> = {}): Reply {
  return { status, type: 'html', body, ...extra };
}

export function jsonReply(status: number, value: unknown, extra: Partial<Reply> = {}): Reply {
  return { status, type: 'json', body: JSON.stringify(value), ...extra };
}

export function redirect(location: string, extra: Partial<Reply> = {}): Reply {
  return { status: 303, ...extra, headers: { ...extra.headers, location } };
}

/** A library denial (303 / 401 / 503) as a reply, keeping the cookies it asks to clear. */
export function denialReply(denial: Denial, setCookie: readonly string[]): Reply {
  const { 'content-type': _type, 'cache-control': _cache, ...headers } = denial.headers;
  const type = denial.headers['content-type']?.startsWith('application/json') ? 'json' : 'html';
  return { status: denial.status, type, body: denial.body, headers, setCookie };
}

export const MAX_BODY_BYTES = 16 * 1024;

export type BodyRead =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly status: 400 | 413 | 415; readonly error: string };

/**
 * Reads a request body of the one media type a route accepts, up to {@link MAX_BODY_BYTES}, as
 * strict UTF-8. Never throws for bad input.
 */
export async function readBody(
  req: IncomingMessage,
  mediaType: 'application/x-www-form-urlencoded' | 'application/json',
): Promise<BodyRead> {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (contentType !== mediaType) {
    return { ok: false, status: 415, error: 'unsupported_media_type' };
  }
  if (Number(req.headers['content-length']) > MAX_BODY_BYTES) {
    // Read and drop the body: closing on a client still sending it would lose it the 413 (EPIPE).
    req.resume();
    return { ok: false, status: 413, error: 'payload_too_large' };
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: BodyRead) => {
      if (done) return;
      done = true;
      chunks.length = 0;
      resolve(result);
    };
    // Past the limit the rest is read and dropped, so the 413 still reaches the client.
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) finish({ ok: false, status: 413, error: 'payload_too_large' });
      else chunks.push(chunk);
    });
    req.on('error', () => finish({ ok: false, status: 400, error: 'invalid_request' }));
    req.on('end', () => {
      try {
        const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
        finish({ ok: true, text });
      } catch {
        finish({ ok: false, status: 400, error: 'invalid_request' });
      }
    });
  });
}

/** Fields of a urlencoded form; a field sent twice counts as missing. */
export function formFields(text: string): Record<string, string | undefined> {
  const params = new URLSearchParams(text);
  const fields: Record<string, string | undefined> = {};
  for (const name of new Set(params.keys())) {
    const values = params.getAll(name);
    fields[name] = values.length === 1 ? values[0] : undefined;
  }
  return fields;
}

/** A JSON object body, or null for anything else (invalid JSON, arrays, strings). */
function jsonObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** A JSON object body, or the JSON error reply (415, 413, or 400 for anything but an object). */
export async function readJsonObject(
  req: IncomingMessage,
): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; reply: Reply }> {
  const body = await readBody(req, 'application/json');
  if (!body.ok) return { ok: false, reply: jsonReply(body.status, { error: body.error }) };
  const value = jsonObject(body.text);
  if (value === null) return { ok: false, reply: jsonReply(400, { error: 'invalid_request' }) };
  return { ok: true, value };
}
