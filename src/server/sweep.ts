import type pino from 'pino';
import { hasCapability } from '../core/capabilities.js';
import type { Latchkey, LatchkeyStore } from '../index.js';
import { errorFields } from './logs.js';
import type { ServerMetrics, SweepCounts } from './metrics.js';

/**
 * Deletes expired remember-me tokens, login-attempt windows and sessions once: the one sweep of
 * `latchkey serve` and `latchkey sweep`. Every store deletes in batches, so no lock is held for
 * long; Redis records expire by TTL and its sweep only trims the expiry and per-user indexes.
 * Gives null when another process is sweeping (a store with an exclusive sweep: PostgreSQL).
 */
export async function sweepOnce(
  latchkey: Latchkey,
  store: LatchkeyStore,
): Promise<SweepCounts | null> {
  const work = async (): Promise<SweepCounts> => {
    const now = Date.now();
    // Tokens and windows first: a store whose session sweep also clears them still counts each.
    const remember = await store.deleteExpiredRemember(now);
    const attempts = await store.deleteExpiredAttempts(now);
    const sessions = await latchkey.deleteExpired();
    return { sessions, remember, attempts };
  };
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
