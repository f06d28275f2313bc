import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import type { Authentication, SessionEvent } from '../index.js';
import { accessLogger, errorFields } from './logs.js';
import type { ServerMetrics, ValidationOutcome } from './metrics.js';
import { fromTrustedProxy, header } from './request.js';
import { isMetricsRequest, serveMetrics } from './routes/ops.js';
import type { AuthObserver } from './site.js';

/** Per-request state: the request id and, once known, the user id (for the access line). */
interface RequestState {
  readonly id: string;
  userId: string | null;
}

/**
 * Each request's state, keyed by the request the routes hold. Not an AsyncLocalStorage: on
 * Node 20 one turns on promise hooks for every promise in the process (before/after in one
 * run: 78 and 76 µs of server CPU per `GET /api/me`, a small gain, within this machine's noise).
 */
const requestStates = new WeakMap<IncomingMessage, RequestState>();

function noteUser(req: IncomingMessage, userId: string): void {
  const state = requestStates.get(req);
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

/** The app's observer: logins and validations to the metrics, the acting user to the access log. */
export function observeAuth(metrics: ServerMetrics | null): AuthObserver {
  return {
    authenticated(req, auth, seconds) {
      if (auth.ok) noteUser(req, auth.session.userId);
      metrics?.validation(auth.ok ? 'valid' : VALIDATION_OUTCOME[auth.reason], seconds);
    },
    loginEnded(req, result) {
      if (result === 'error') metrics?.login('error');
      else if (result.ok) {
        noteUser(req, result.session.userId);
        metrics?.login('success');
      } else metrics?.login(result.error === 'too_many_attempts' ? 'throttled' : 'invalid');
    },
    actingAs: noteUser,
  };
}

/** The engine's `onEvent`: the metrics' session counts, then `next`. */
export function observeEvents(
  metrics: ServerMetrics | null,
  next: (event: SessionEvent) => void,
): (event: SessionEvent) => void {
  return (event) => {
    metrics?.event(event);
    next(event);
  };
}

/** The id {@link observeRequests} gave `req`, for its response's `X-Request-Id`. */
export function requestIdOfObserved(req: IncomingMessage): string | undefined {
  return requestStates.get(req)?.id;
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
  const path = target.slice(0, endOfPath(target));
  // The common case: too short for any segment to reach an id's length.
  if (path.length < ID_LENGTH) return path;
  return path
    .slice(0, 512)
    .split('/')
    .map((segment) => (segment.length >= ID_LENGTH ? ':id' : segment))
    .join('/');
}

/** A path segment this long is taken for an id or a token. */
const ID_LENGTH = 20;

/** Where the path of a request target ends: at its query or fragment, else at its end. */
function endOfPath(target: string): number {
  const query = target.indexOf('?');
  const fragment = target.indexOf('#');
  if (query === -1) return fragment === -1 ? target.length : fragment;
  return fragment === -1 ? query : Math.min(query, fragment);
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
  const access = accessLogger(logger);
  return (req, res) => {
    const started = performance.now();
    const state: RequestState = { id: requestIdOf(req, trustedProxies), userId: null };
    requestStates.set(req, state);
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
      if (res.statusCode >= 500) access.warn(fields, 'request');
      else access.info(fields, 'request');
    });
    if (metrics && isMetricsRequest(req)) {
      res.setHeader('x-request-id', state.id);
      void serveMetrics(metrics, req, res, metricsToken);
      return;
    }
    handler(req, res).catch((error: unknown) => {
      logger.error({ reqId: state.id, err: errorFields(error) }, 'request failed');
      if (!res.headersSent) res.writeHead(500, { 'x-request-id': state.id }).end();
      else res.destroy();
    });
  };
}
