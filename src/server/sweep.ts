import type pino from 'pino';
import type { Latchkey, LatchkeyStore } from '../index.js';
import { errorFields, type ServerMetrics, type SweepCounts } from './observe.js';

/** A store that can make sure only one process sweeps at a time (PostgreSQL). */
interface ExclusiveSweeper {
  sweepExclusive<T>(work: () => Promise<T>): Promise<T | null>;
}

function isExclusive(store: object): store is ExclusiveSweeper {
  return typeof (store as { sweepExclusive?: unknown }).sweepExclusive === 'function';
}

/**
 * Deletes expired sessions, remember-me tokens and login-attempt windows once. Every store deletes
 * in batches, so no lock is held for long; Redis records expire by TTL and its sweep only trims the
 * expiry and per-user indexes. Gives null when another process is sweeping (PostgreSQL).
 */
export async function sweepOnce(
  latchkey: Latchkey,
  store: LatchkeyStore,
): Promise<SweepCounts | null> {
  const work = async (): Promise<SweepCounts> => {
    const sessions = await latchkey.deleteExpired();
    const now = Date.now();
    const remember = await store.deleteExpiredRemember(now);
    const attempts = await store.deleteExpiredAttempts(now);
    return { sessions, remember, attempts };
  };
  return isExclusive(store) ? store.sweepExclusive(work) : work();
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
  readonly store: LatchkeyStore;
  readonly logger: pino.Logger;
  readonly metrics: ServerMetrics | null;
}): Sweeper {
  const { interval, latchkey, store, logger, metrics } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let stopped = false;

  const run = async () => {
    const started = Date.now();
    try {
      const counts = await sweepOnce(latchkey, store);
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
