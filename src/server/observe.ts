import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import type { Authentication, SessionEvent } from '../index.js';
import { errorFields } from './logs.js';
import type { ServerMetrics, ValidationOutcome } from './metrics.js';
import { fromTrustedProxy, header } from './request.js';
import { isMetricsRequest, serveMetrics } from './routes/ops.js';
import type { AuthObserver } from './site.js';

/** Per-request state: the request id and, once known, the user id (for the access line). */
interface RequestState {
  readonly id: string;
  userId: string | null;
}

const requestState = new AsyncLocalStorage<RequestState>();

function noteUser(userId: string): void {
  const state = requestState.getStore();
  if (state) state.userId = userId;
}

const VALIDATION_OUTCOME: Record<
  Exclude<Authentication, { ok: true }>['reason'],
  ValidationOutcome
> = {
  missing: 'missing',
  malformed: 'missing',
  expired: 'expired',
  not_found: 'revoked',
  unavailable: 'store_error',
};

/** The app's observer: logins and validations to the metrics, the signed-in user to the access log. */
export function observeAuth(metrics: ServerMetrics | null): AuthObserver {
  return {
    authenticated(auth, seconds) {
      if (auth.ok) noteUser(auth.session.userId);
      metrics?.validation(auth.ok ? 'valid' : VALIDATION_OUTCOME[auth.reason], seconds);
    },
    loginEnded(result) {
      if (result === 'error') metrics?.login('error');
      else if (result.ok) metrics?.login('success');
      else metrics?.login(result.error === 'too_many_attempts' ? 'throttled' : 'invalid');
    },
  };
}

/** The engine's `onEvent`: the metrics' session counts, the access log's user, then `next`. */
export function observeEvents(
  metrics: ServerMetrics | null,
  next: (event: SessionEvent) => void,
): (event: SessionEvent) => void {
  return (event) => {
    metrics?.event(event);
    const userId = actingUser(event);
    if (userId !== null) noteUser(userId);
    next(event);
  };
}

/** The user an event shows to be making the request (not the target of a failed login). */
function actingUser(event: SessionEvent): string | null {
  switch (event.type) {
    case 'created':
    case 'refreshed':
    case 'logout':
    case 'rotated':
    case 'login_succeeded':
      return event.session.userId;
    default:
      return null;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The request's id: a trusted proxy's `X-Request-Id` when well-formed, else a new UUID. */
export function requestIdOf(req: IncomingMessage, trustedProxies: ReadonlySet<string>): string {
  const given = header(req, 'x-request-id');
  if (given !== null && REQUEST_ID.test(given) && fromTrustedProxy(req, trustedProxies)) {
    return given;
  }
  return randomUUID();
}

/**
 * The path for the access log: no query, and any segment long enough to be an id or a token
 * (`/api/sessions/<id>`, a token pasted into a URL) replaced by `:id`.
 */
export function routeOf(url: string | undefined): string {
  const target = url ?? '/';
  const queryAt = target.search(/[?#]/);
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  return path
    .slice(0, 512)
    .split('/')
    .map((segment) => (segment.length >= 20 ? ':id' : segment))
    .join('/');
}

export interface ObserveOptions {
  readonly logger: pino.Logger;
  readonly trustedProxies: ReadonlySet<string>;
  /** Answers `GET /metrics` before the app when given. */
  readonly metrics: ServerMetrics | null;
  /** The bearer token `GET /metrics` needs, or null for none. */
  readonly metricsToken: string | null;
}

/**
 * Wraps the app: a request id (echoed as `X-Request-Id`), one access line per request when the
 * response is done or the client went away, and `GET /metrics` when asked to serve it.
 */
export function observeRequests(
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  options: ObserveOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { logger, trustedProxies, metrics, metricsToken } = options;
  return (req, res) => {
    const started = performance.now();
    const state: RequestState = { id: requestIdOf(req, trustedProxies), userId: null };
    res.setHeader('x-request-id', state.id);
    res.once('close', () => {
      const fields = {
        reqId: state.id,
        method: req.method,
        route: routeOf(req.url),
        status: res.statusCode,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        userId: state.userId,
        ...(res.writableFinished ? {} : { aborted: true }),
      };
      if (res.statusCode >= 500) logger.warn(fields, 'request');
      else logger.info(fields, 'request');
    });
    if (metrics && isMetricsRequest(req)) {
      void serveMetrics(metrics, req, res, metricsToken);
      return;
    }
    requestState.run(state, () => {
      handler(req, res).catch((error: unknown) => {
        logger.error({ reqId: state.id, err: errorFields(error) }, 'request failed');
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
  };
}
