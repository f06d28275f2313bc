import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionStore, UserStore } from '../../index.js';
import { retryAfter } from '../answers.js';
import { jsonReply } from '../http.js';
import type { ServerMetrics } from '../metrics.js';
import { header } from '../request.js';
import type { Routes, Site } from '../site.js';
import { userOf } from '../views.js';

/** A store that may evict live records (Memcached) reports how many it has evicted. */
interface EvictingStore {
  evictions(): Promise<number>;
}

/** How to read the store's evictions count, or null for a store that never evicts. */
export function evictionsOf(store: object): (() => Promise<number>) | null {
  const evicting = store as Partial<EvictingStore>;
  return typeof evicting.evictions === 'function'
    ? () => (store as EvictingStore).evictions()
    : null;
}

/** Health, readiness and forward auth: for load balancers and proxies, never for people. */
export function opsRoutes(site: Site, store: SessionStore, users?: UserStore): Routes {
  const { latchkey } = site;
  const readEvictions = evictionsOf(store);
  return {
    '/healthz': { GET: async () => jsonReply(200, { status: 'ok' }) },
    '/readyz': {
      GET: async () => {
        try {
          // Both stores must answer: a login needs the users store, every request the sessions one.
          const [, , evictions] = await Promise.all([
            store.get('readiness-probe'),
            users && users !== (store as unknown) ? users.findUserById('readiness-probe') : null,
            readEvictions?.() ?? null,
          ]);
          return jsonReply(
            200,
            evictions === null ? { status: 'ready' } : { status: 'ready', evictions },
          );
        } catch {
          return jsonReply(503, { status: 'unavailable' }, { headers: retryAfter() });
        }
      },
    },
    // Forward auth (nginx auth_request, Traefik, Caddy): 200 with who it is, else 401; never a
    // redirect. A store outage is a 503 (never "logged out"). The user name is percent-encoded:
    // a display name, which downstream apps must not key on (X-Auth-User-Id is the identity).
    '/auth/verify': {
      GET: async (ctx) => {
        // The session cookie only: a remember-me restore rotates cookies, which a proxy would not
        // pass on from here; it happens on the login page instead, which sends the browser back.
        const read = latchkey.sessionCookie.read(ctx.cookie);
        const cookie = read.value === null ? null : `${latchkey.sessionCookie.name}=${read.value}`;
        const auth = await site.authenticate(ctx, true, cookie);
        if (!auth.ok) {
          const status = auth.reason === 'unavailable' ? 503 : 401;
          return { status, setCookie: auth.setCookie, headers: status === 503 ? retryAfter() : {} };
        }
        // A host whose policy is `two_factor` takes only level-2 sessions; the login page then
        // sends the browser on to the second-factor step and back (`rd`).
        if (auth.session.aal < 2 && site.needsSecondFactor(null, header(ctx.req, 'host'))) {
          return { status: 401, setCookie: auth.setCookie, headers: {} };
        }
        const user = userOf(auth.session.user, auth.session.userId);
        return {
          status: 200,
          setCookie: auth.setCookie,
          headers: {
            'x-auth-user-id': headerText(user.id),
            'x-auth-user': headerText(user.username),
          },
        };
      },
    },
  };
}

/** Whether `authorization` is `Bearer <token>`, compared in constant time (as SHA-256 digests). */
function isBearer(authorization: string | undefined, token: string): boolean {
  const given = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
  if (given === undefined) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(token));
}

/** Percent-encoded UTF-8; a lone surrogate (an account named before they were refused) is U+FFFD. */
function headerText(text: string): string {
  return encodeURIComponent(text.replace(/\p{Cs}/gu, '\ufffd'));
}

/** Whether a request asks for `/metrics`. */
export function isMetricsRequest(req: IncomingMessage): boolean {
  return req.url === '/metrics' || req.url?.startsWith('/metrics?') === true;
}

/**
 * `GET /metrics`, answered in front of the app (Prometheus's own headers, no page headers), on
 * the main port or on a metrics-only listener.
 */
export async function serveMetrics(
  metrics: ServerMetrics,
  req: IncomingMessage,
  res: ServerResponse,
  token: string | null,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (token !== null && !isBearer(req.headers.authorization, token)) {
    res.writeHead(401, {
      'www-authenticate': 'Bearer realm="metrics"',
      'cache-control': 'no-store',
    });
    res.end();
    return;
  }
  try {
    const body = await metrics.view.metrics();
    res.writeHead(200, {
      'content-type': metrics.view.contentType,
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(500).end();
  }
}

/** `GET /metrics` (and only that) for a metrics-only listener. */
export function metricsOnly(
  metrics: ServerMetrics,
  token: string | null,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (isMetricsRequest(req)) {
      void serveMetrics(metrics, req, res, token);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  };
}
