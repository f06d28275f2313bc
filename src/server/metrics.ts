import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  Registry,
} from 'prom-client';
import type { SessionEvent } from '../index.js';

export type LoginOutcome = 'success' | 'invalid' | 'throttled' | 'error';
export type ValidationOutcome = 'valid' | 'missing' | 'expired' | 'revoked' | 'store_error';
/** Rows one sweep deleted, by kind. */
export interface SweepCounts {
  readonly sessions: number;
  readonly remember: number;
  readonly attempts: number;
}

/** What `GET /metrics` shows: a registry, or every cluster worker's registries summed. */
export interface MetricsView {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** IPC between a cluster worker and the primary: a worker asks, the primary answers. */
export const METRICS_REQUEST = 'latchkey:metrics-request';
export const METRICS_ANSWER = 'latchkey:metrics-answer';

export interface MetricsAnswer {
  readonly type: typeof METRICS_ANSWER;
  readonly id: number;
  readonly body?: string;
  readonly error?: string;
}

/** How long a worker waits for the primary's aggregate (prom-client gives up on workers at 5 s). */
const ASK_PRIMARY_MS = 8000;

/** The server's Prometheus metrics, on a registry of their own. */
export class ServerMetrics {
  readonly registry = new Registry();
  /** What `GET /metrics` answers: this registry, or in a cluster worker the whole cluster's. */
  readonly view: MetricsView;
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

  /** `cluster`: this is a `node:cluster` worker, and `/metrics` shows every worker's sum. */
  constructor(options: { readonly cluster?: boolean } = {}) {
    this.view = options.cluster ? clusterView(this.registry) : this.registry;
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

  /** Reports the sessions store's evictions count (Memcached) as `latchkey_store_evictions`. */
  watchEvictions(read: () => Promise<number>): void {
    new Gauge({
      name: 'latchkey_store_evictions',
      help: 'Items the sessions store has evicted for memory (each may have logged a user out), as the store reports it.',
      registers: [this.registry],
      // Every worker reads the same store's count: summing would multiply it.
      aggregator: 'first',
      async collect() {
        this.set(await read());
      },
    });
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

/**
 * The cluster's metrics, for a worker: prom-client's AggregatorRegistry in the primary collects
 * every worker's registry (this one answers its requests), so the worker that got `/metrics`
 * asks the primary over IPC for the sum.
 */
function clusterView(registry: Registry): MetricsView {
  AggregatorRegistry.setRegistries(registry);
  // The constructor is what makes this worker answer the primary's collection requests.
  new AggregatorRegistry();
  const pending = new Map<number, (answer: MetricsAnswer) => void>();
  let next = 0;
  process.on('message', (message: Partial<MetricsAnswer> | null) => {
    if (message?.type !== METRICS_ANSWER || typeof message.id !== 'number') return;
    pending.get(message.id)?.(message as MetricsAnswer);
  });
  return {
    contentType: registry.contentType,
    metrics() {
      const id = next++;
      return new Promise<string>((resolve, reject) => {
        const settle = (answer: MetricsAnswer) => {
          pending.delete(id);
          clearTimeout(timer);
          if (answer.body !== undefined) resolve(answer.body);
          else reject(new Error(answer.error ?? 'no metrics from the primary'));
        };
        const timer = setTimeout(
          () => settle({ type: METRICS_ANSWER, id, error: 'the primary did not answer' }),
          ASK_PRIMARY_MS,
        );
        pending.set(id, settle);
        process.send?.({ type: METRICS_REQUEST, id });
      });
    },
  };
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
