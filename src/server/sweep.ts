import type pino from 'pino';
import { hasCapability } from '../core/capabilities.js';
import type { Latchkey } from '../index.js';
import { errorFields } from './logs.js';
import type { ServerMetrics, SweepCounts } from './metrics.js';
import type { SessionsStore, UsersStore } from './stores.js';

/** The stores a sweep works on: one object for both roles, or a sessions and a users store. */
export interface SweptStores {
  readonly sessions: SessionsStore;
  readonly users: UsersStore;
}

/**
 * Deletes expired remember-me tokens, login-attempt windows and sessions once: the one sweep of
 * `latchkey serve` and `latchkey sweep`. Every store deletes in batches, so no lock is held for
 * long; Redis records expire by TTL and its sweep deletes them sooner and trims the index buckets.
 * Remember-me tokens are swept in the users store; windows and sessions in the sessions store
 * (one that expires its records itself, without an expiry sweep, deletes none). A store with an
 * exclusive sweep (PostgreSQL) runs its part under its lock; gives null when another process
 * held every lock asked for, so nothing was swept.
 */
export async function sweepOnce(
  latchkey: Latchkey,
  stores: SweptStores,
): Promise<SweepCounts | null> {
  const { sessions: sessionStore, users: userStore } = stores;
  const sweepSessions = async (): Promise<Omit<SweepCounts, 'remember'>> => {
    const now = Date.now();
    const attempts = await sessionStore.deleteExpiredAttempts(now);
    const sessions = hasCapability(sessionStore, 'expiry sweep')
      ? await latchkey.deleteExpired()
      : 0;
    return { sessions, attempts };
  };
  if (sessionStore === (userStore as unknown)) {
    const work = async (): Promise<SweepCounts> => {
      // Tokens first: a store whose session sweep also clears them still counts each.
      const remember = await userStore.deleteExpiredRemember(Date.now());
      return { remember, ...(await sweepSessions()) };
    };
    return exclusive(sessionStore, work);
  }
  const remember = await exclusive(userStore, () => userStore.deleteExpiredRemember(Date.now()));
  const rest = await exclusive(sessionStore, sweepSessions);
  if (remember === null && rest === null) return null;
  return { remember: remember ?? 0, sessions: rest?.sessions ?? 0, attempts: rest?.attempts ?? 0 };
}

/** `work` under the store's sweep lock when it has one (null: another process holds it). */
function exclusive<T>(store: object, work: () => Promise<T>): Promise<T | null> {
  return hasCapability(store, 'exclusive sweep') ? store.sweepExclusive(work) : work();
}

export interface Sweeper {
  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void>;
}

/** The next wait: `interval` ±20%, so many processes started together spread out. */
export function jittered(interval: number, random: () => number = Math.random): number {
  return Math.round(interval * (0.8 + 0.4 * random()));
}

/** Sweeps every `interval` ms (jittered), the first time one jittered interval after start. */
export function startSweeper(options: {
  readonly interval: number;
  readonly latchkey: Latchkey;
  readonly stores: SweptStores;
  readonly logger: pino.Logger;
  readonly metrics: ServerMetrics | null;
}): Sweeper {
  const { interval, latchkey, stores, logger, metrics } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let stopped = false;

  const run = async () => {
    const started = Date.now();
    try {
      const counts = await sweepOnce(latchkey, stores);
      if (counts === null) {
        metrics?.sweep('skipped');
        logger.debug('sweep skipped: another process is sweeping');
        return;
      }
      metrics?.sweep(counts);
      const total = counts.sessions + counts.remember + counts.attempts;
      logger[total > 0 ? 'info' : 'debug'](
        { ...counts, durationMs: Date.now() - started },
        'sweep',
      );
    } catch (error) {
      metrics?.sweep('failed');
      logger.warn({ err: errorFields(error) }, 'sweep failed');
    }
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = run().finally(() => {
        running = null;
        schedule();
      });
    }, jittered(interval));
  };
  if (interval > 0) schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
