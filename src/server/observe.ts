import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import {
  type Authentication,
  type Credentials,
  Latchkey,
  type LatchkeyOptions,
  type LoginContext,
  type LoginResult,
  type RequestInfo,
  type SessionEvent,
} from '../index.js';
import { normalizeIp } from './app.js';
import type { LogLevel } from './config.js';

// ---------------------------------------------------------------------------------------------
// Per-request state: the request id and, once known, the user id (for the access line).
// ---------------------------------------------------------------------------------------------

interface RequestState {
  readonly id: string;
  userId: string | null;
}

const requestState = new AsyncLocalStorage<RequestState>();

function noteUser(userId: string): void {
  const state = requestState.getStore();
  if (state) state.userId = userId;
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

export type LoginOutcome = 'success' | 'invalid' | 'throttled' | 'error';
export type ValidationOutcome = 'valid' | 'missing' | 'expired' | 'revoked' | 'store_error';
export interface SweepCounts {
  readonly sessions: number;
  readonly remember: number;
  readonly attempts: number;
}

/** The server's Prometheus metrics, on a registry of their own. */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly logins: Counter<'result'>;
  private readonly validations: Counter<'result'>;
  private readonly validationSeconds: Histogram;
  private readonly storeErrors: Counter;
  private readonly sessionsCreated: Counter;
  private readonly sessionsEnded: Counter<'reason'>;
  private readonly sweeps: Counter<'result'>;
  private readonly swept: Counter<'kind'>;
  private created = 0;
  private ended = 0;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.logins = new Counter({
      name: 'latchkey_logins_total',
      help: 'Password logins by result: success, invalid (credentials or request), throttled, error (store down).',
      labelNames: ['result'],
      registers,
    });
    this.validations = new Counter({
      name: 'latchkey_validations_total',
      help: 'Session checks by result: valid, missing (no or malformed cookie), expired, revoked (unknown session), store_error.',
      labelNames: ['result'],
      registers,
    });
    this.validationSeconds = new Histogram({
      name: 'latchkey_validation_duration_seconds',
      help: 'Time to authenticate a request (cookie, store read, refresh write, remember-me restore).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.storeErrors = new Counter({
      name: 'latchkey_store_errors_total',
      help: 'Store calls that failed (the store was unreachable or refused).',
      registers,
    });
    this.sessionsCreated = new Counter({
      name: 'latchkey_sessions_created_total',
      help: 'Sessions this process created.',
      registers,
    });
    this.sessionsEnded = new Counter({
      name: 'latchkey_sessions_ended_total',
      help: 'Sessions this process ended, by reason: logout, revoked, expired, evicted, swept.',
      labelNames: ['reason'],
      registers,
    });
    const metrics = this;
    new Gauge({
      name: 'latchkey_active_sessions',
      help: 'Estimate of live sessions: created minus ended, as seen by this process since it started (never a store scan).',
      registers,
      collect() {
        this.set(Math.max(0, metrics.created - metrics.ended));
      },
    });
    this.sweeps = new Counter({
      name: 'latchkey_sweeps_total',
      help: 'Expiry sweeps by result: done, skipped (another process held the sweep lock), failed.',
      labelNames: ['result'],
      registers,
    });
    this.swept = new Counter({
      name: 'latchkey_swept_rows_total',
      help: 'Expired rows deleted by sweeps, by kind: sessions, remember, attempts.',
      labelNames: ['kind'],
      registers,
    });
    for (const result of ['success', 'invalid', 'throttled', 'error'])
      this.logins.inc({ result }, 0);
    for (const result of ['valid', 'missing', 'expired', 'revoked', 'store_error']) {
      this.validations.inc({ result }, 0);
    }
    for (const result of ['done', 'skipped', 'failed']) this.sweeps.inc({ result }, 0);
    for (const kind of ['sessions', 'remember', 'attempts']) this.swept.inc({ kind }, 0);
  }

  login(result: LoginOutcome): void {
    this.logins.inc({ result });
  }

  validation(result: ValidationOutcome, seconds: number): void {
    this.validations.inc({ result });
    this.validationSeconds.observe(seconds);
  }

  storeError(): void {
    this.storeErrors.inc();
  }

  /** Session events from the core's `onEvent`: the active-sessions estimate. */
  event(event: SessionEvent): void {
    switch (event.type) {
      case 'created':
        this.created += 1;
        this.sessionsCreated.inc();
        return;
      case 'logout':
      case 'expired':
      case 'evicted':
        this.end(event.type, 1);
        return;
      case 'revoked':
        this.end('revoked', event.count);
        return;
      default:
    }
  }

  sweep(result: SweepCounts | 'skipped' | 'failed'): void {
    if (typeof result === 'string') {
      this.sweeps.inc({ result });
      return;
    }
    this.sweeps.inc({ result: 'done' });
    for (const kind of ['sessions', 'remember', 'attempts'] as const) {
      this.swept.inc({ kind }, result[kind]);
    }
    this.end('swept', result.sessions);
  }

  private end(reason: string, count: number): void {
    if (count <= 0) return;
    this.ended += count;
    this.sessionsEnded.inc({ reason }, count);
  }
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

/**
 * The server's {@link Latchkey}: the same engine, reporting logins and validations to the
 * metrics and the signed-in user to the access log. Nothing here is in `src/core`.
 */
export class ObservedLatchkey extends Latchkey {
  private readonly metrics: ServerMetrics | null;

  constructor(options: LatchkeyOptions, metrics: ServerMetrics | null) {
    const listener = options.onEvent;
    super({
      ...options,
      onEvent: (event) => {
        metrics?.event(event);
        const userId = actingUser(event);
        if (userId !== null) noteUser(userId);
        listener?.(event);
      },
    });
    this.metrics = metrics;
  }

  override async authenticate(request: Request | RequestInfo): Promise<Authentication> {
    const started = performance.now();
    const auth = await super.authenticate(request);
    if (auth.ok) noteUser(auth.session.userId);
    this.metrics?.validation(
      auth.ok ? 'valid' : VALIDATION_OUTCOME[auth.reason],
      (performance.now() - started) / 1000,
    );
    return auth;
  }

  override async login(credentials: Credentials, context?: LoginContext): Promise<LoginResult> {
    let result: LoginResult;
    try {
      result = await super.login(credentials, context);
    } catch (error) {
      this.metrics?.login('error');
      throw error;
    }
    if (result.ok) this.metrics?.login('success');
    else this.metrics?.login(result.error === 'too_many_attempts' ? 'throttled' : 'invalid');
    return result;
  }
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

/**
 * `store` with every failed call counted (a rejected promise is the store's one way of saying
 * "unavailable"). Calls still go to the store itself, so its private state is untouched.
 */
export function countStoreErrors<T extends object>(store: T, onError: () => void): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || property === 'constructor') return value;
      let wrapper = wrapped.get(property);
      if (wrapper === undefined) {
        const method = value as (...args: unknown[]) => unknown;
        wrapper = (...args: unknown[]): unknown => {
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (error) {
            onError();
            throw error;
          }
          if (result instanceof Promise) result.then(undefined, onError);
          return result;
        };
        wrapped.set(property, wrapper);
      }
      return wrapper;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

/**
 * Standard output for the server log: JSON lines (pino) when it is a pipe or file, short human
 * lines when it is a terminal.
 */
export function stdoutDestination(pretty: boolean): pino.DestinationStream & { flushSync(): void } {
  const json = pino.destination({ dest: 1, sync: true });
  if (!pretty) return json;
  return {
    write(line: string) {
      json.write(humanLine(line));
    },
    flushSync() {
      json.flushSync();
    },
  };
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** `12:00:01.234 INFO  request GET /dashboard 200 2.1ms user=… req=…` */
function humanLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, ...fields } = record;
  const clock =
    typeof time === 'string' || typeof time === 'number'
      ? new Date(time).toISOString().slice(11, 23)
      : '';
  const name = (typeof level === 'number' ? LEVEL_NAMES[level] : undefined) ?? String(level ?? '');
  if (msg === 'request') {
    const { method, route, status, durationMs, userId, reqId, ...other } = fields;
    const extra = Object.keys(other).length > 0 ? ` ${JSON.stringify(other)}` : '';
    return `${clock} ${name.padEnd(5)} ${method} ${route} ${status} ${durationMs}ms user=${userId ?? '-'} req=${reqId}${extra}\n`;
  }
  const rest = Object.entries(fields)
    .filter(([, value]) => value !== undefined && value !== null)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${clock} ${name.padEnd(5)} ${String(msg ?? '')}${rest ? ` ${rest}` : ''}\n`;
}

/** The one server logger. */
export function createLogger(level: LogLevel, destination: pino.DestinationStream): pino.Logger {
  return pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: none of these is ever passed to the logger.
      redact: { paths: ['password', 'token', 'cookie', '*.password', '*.cookie'], remove: true },
    },
    destination,
  );
}

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The request's id: a trusted proxy's `X-Request-Id` when well-formed, else a new UUID. */
export function requestIdOf(req: IncomingMessage, trustedProxies: ReadonlySet<string>): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && REQUEST_ID.test(given)) {
    const peer = normalizeIp(req.socket.remoteAddress);
    if (peer !== null && trustedProxies.has(peer)) return given;
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
}

/**
 * Wraps the app: a request id (echoed as `X-Request-Id`), one access line per request when the
 * response is done or the client went away, and `GET /metrics` when asked to serve it.
 */
export function observeRequests(
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  options: ObserveOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { logger, trustedProxies, metrics } = options;
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
    if (metrics && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      void serveMetrics(metrics, req, res);
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

/** `GET /metrics` (and only that) for a metrics-only listener. */
export function metricsOnly(
  metrics: ServerMetrics,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.url === '/metrics' || req.url?.startsWith('/metrics?')) {
      void serveMetrics(metrics, req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  };
}

async function serveMetrics(
  metrics: ServerMetrics,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  try {
    const body = await metrics.registry.metrics();
    res.writeHead(200, {
      'content-type': metrics.registry.contentType,
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(500).end();
  }
}

/** An error for the log: its class and message, never request data. */
export function errorFields(error: unknown): { type: string; message: string } {
  return error instanceof Error
    ? { type: error.name, message: error.message }
    : { type: typeof error, message: String(error) };
}
