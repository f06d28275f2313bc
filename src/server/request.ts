import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { LoginContext, OriginHeaders, RequestInfo } from '../index.js';

/** What a route reads from a request. */
export interface Context {
  readonly req: IncomingMessage;
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly ip: string | null;
  readonly cookie: string | null;
}

/** The query marker of a same-site re-navigation (see {@link isCrossSiteNavigation}). */
export const RENAVIGATED = 'renav';

const JSON_TYPE = 'application/json';

/** The request's context, or null for a target that is not an origin-form path. */
export function contextOf(
  req: IncomingMessage,
  trustedProxies: ReadonlySet<string>,
): Context | null {
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

/** A header sent once, or null (absent, or sent as a list). */
export function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' ? value : null;
}

/** A valid IP address, with IPv4-mapped IPv6 (`::ffff:1.2.3.4`) written as IPv4; else null. */
export function normalizeIp(value: string | undefined): string | null {
  const address = value?.trim().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '') ?? '';
  return isIP(address) === 0 ? null : address.toLowerCase();
}

/** Whether the socket peer is one of the proxies whose forwarding headers are believed. */
export function fromTrustedProxy(
  req: IncomingMessage,
  trustedProxies: ReadonlySet<string>,
): boolean {
  const peer = normalizeIp(req.socket.remoteAddress);
  return peer !== null && trustedProxies.has(peer);
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

/**
 * Whether `host` is a loopback name: `localhost`, `127.x.y.z` or `::1`, as a listen address or
 * a `Host` header (`[::1]`, any port). Browsers treat only these as secure over plain http.
 */
export function isLoopback(host: string): boolean {
  const lower = host.toLowerCase();
  const name =
    /^\[([^\]]*)\](?::\d+)?$/.exec(lower)?.[1] ??
    (isIP(lower) === 6 ? lower : lower.replace(/:\d+$/, ''));
  return name === 'localhost' || name === '::1' || /^127(\.\d{1,3}){3}$/.test(name);
}

/** The headers {@link isSameOrigin} reads. */
export function originHeaders(ctx: Context): OriginHeaders {
  return {
    method: ctx.method,
    origin: header(ctx.req, 'origin'),
    referer: header(ctx.req, 'referer'),
    secFetchSite: header(ctx.req, 'sec-fetch-site'),
  };
}

/** What the engine reads to authenticate: an API call asks for JSON denials, a page for HTML. */
export function requestInfo(ctx: Context, api: boolean): RequestInfo {
  return {
    method: ctx.method,
    url: api ? ctx.path : withoutMarker(ctx),
    cookie: ctx.cookie,
    accept: api ? JSON_TYPE : header(ctx.req, 'accept'),
    secFetchMode: api ? null : header(ctx.req, 'sec-fetch-mode'),
    ip: ctx.ip,
    userAgent: header(ctx.req, 'user-agent'),
  };
}

export function loginContext(ctx: Context): LoginContext {
  return { ip: ctx.ip, userAgent: header(ctx.req, 'user-agent'), cookie: ctx.cookie };
}

export function isApi(path: string): boolean {
  return path === '/api' || path.startsWith('/api/');
}

export function hasBody(req: IncomingMessage): boolean {
  return (
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0
  );
}

/** A body, or a content type, that is not JSON: a cross-site form or `text/plain` post. */
export function hasNonJsonBody(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return type === '' ? hasBody(req) : type !== JSON_TYPE;
}

/** A top-level navigation from another site: SameSite=Strict kept the cookie out. */
export function isCrossSiteNavigation(ctx: Context): boolean {
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

/**
 * The login page's return address: `?next=`, or `?rd=` (forward-auth proxies). nginx cannot
 * URL-encode, so an `rd` that starts with `http://` or `https://` is the rest of the query as sent.
 */
export function nextOf(ctx: Context): string | null {
  const next = ctx.query.get('next');
  if (next !== null) return next;
  const target = ctx.req.url ?? '';
  const raw = /[?&]rd=(https?:\/\/.*)$/i.exec(target)?.[1];
  return raw ?? ctx.query.get('rd');
}
