import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionDataPatch, SessionIndex } from '../core/capabilities.js';
import type { SessionRecord, SessionStore } from '../core/store.js';
import { liveRecord, MINUTE, record } from './records.js';

/** What the suite reads of a validation cache. */
export interface ValidationCacheView {
  /** Whether entries are served now. */
  readonly active: boolean;
  readonly maxStaleness: number;
  size(): number;
  stats(): { hitCount: number };
}

type CachedStore = SessionStore & SessionIndex & SessionDataPatch;

/**
 * How {@link describeValidationCache} opens its stores: two over the same data, each with its own
 * connection and validation cache, as two processes sharing one backend.
 */
export interface ValidationCacheHarness<S extends CachedStore> {
  /** A fresh, isolated pair. The first store's cache keeps at most 100 entries. */
  open(): Promise<[S, S]>;
  /** The store's validation cache (null: it has none, which fails the suite). */
  cache(store: S): ValidationCacheView | null;
  /** Drops whatever `open` created. */
  cleanup?(): Promise<void>;
  /** A reason to skip (service absent); `LATCHKEY_REQUIRE_SERVICES=1` makes the skip a failure. */
  unavailable?(): Promise<string | null>;
  /** A third store over the same data, to test bounded staleness: give it when you can. */
  freezable?: {
    /** Opens it; it reaches the backend through a connection `freeze` can stop. */
    open(): Promise<S>;
    /** Stops every byte between it and the backend without closing anything (a frozen network). */
    freeze(): void;
    /** Lets the bytes through again. */
    thaw(): void;
  };
}

const ROUNDS = 1000;
/** The 1,000-round loops are quick on an idle machine, slow on a loaded one: never cut short. */
const LONG = { timeout: 300_000 };

/** A cache shared by several processes: what one writes, every other reads at once. */
export function describeValidationCache<S extends CachedStore>(
  name: string,
  harness: ValidationCacheHarness<S>,
): void {
  describe(`validation cache: ${name}`, () => {
    let a: S;
    let b: S;
    let opened: [S, S] | null = null;
    /** Rounds whose session was served from the first store's cache just before the write. */
    let hitRounds = 0;
    beforeEach(async (context) => {
      const reason = (await harness.unavailable?.()) ?? null;
      if (reason) {
        if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') {
          throw new Error(`${name} is required (LATCHKEY_REQUIRE_SERVICES=1) but ${reason}`);
        }
        console.warn(`skipping ${name}: ${reason}`);
        context.skip();
      }
      hitRounds = 0;
      opened = await harness.open();
      [a, b] = opened;
      await until(() => cacheOf(a).active && cacheOf(b).active);
    });
    afterEach(async () => {
      harness.freezable?.thaw();
      if (!opened) return;
      await Promise.all(opened.map((store) => store.close()));
      opened = null;
      await harness.cleanup?.();
    });

    function cacheOf(store: S): ValidationCacheView {
      const cache = harness.cache(store);
      if (!cache) throw new Error('the store has no validation cache');
      return cache;
    }

    /** Most rounds must have been hits, or the test proved nothing (a loaded machine may lapse a few). */
    function expectMostlyHits(rounds: number): void {
      console.info(`${name}: ${hitRounds} of ${rounds} rounds read the session from the cache`);
      expect(hitRounds).toBeGreaterThanOrEqual(rounds * 0.9);
    }

    /** A live session, read twice on `on` (the first store by default): the second read a hit. */
    async function cachedOnA(
      overrides: Partial<SessionRecord> = {},
      on: S = a,
    ): Promise<SessionRecord> {
      const created = liveRecord(overrides);
      await b.create(created);
      await on.get(created.id);
      const hits = cacheOf(on).stats().hitCount;
      expect((await on.get(created.id))?.id).toBe(created.id);
      if (cacheOf(on).stats().hitCount === hits + 1) hitRounds++;
      return created;
    }

    // No waiting anywhere: a write answers only once every other cache dropped its copy.
    it(
      `updateData on one store is seen by the other's very next read (${ROUNDS} times)`,
      LONG,
      async () => {
        for (let i = 0; i < ROUNDS; i++) {
          const created = await cachedOnA({ data: { n: -1 } });
          const change = { set: { n: i }, remove: [], maxBytes: 8192 };
          expect(await b.updateData(created.id, change)).toBe('updated');
          expect((await a.get(created.id))?.data).toEqual({ n: i });
        }
        expectMostlyHits(ROUNDS);
      },
    );

    it(
      `touch on one store is seen by the other's very next read (${ROUNDS} times)`,
      LONG,
      async () => {
        for (let i = 0; i < ROUNDS; i++) {
          const created = await cachedOnA();
          await b.touch(created.id, created.lastSeenAt + 1, created.idleExpiresAt + 1);
          expect((await a.get(created.id))?.lastSeenAt).toBe(created.lastSeenAt + 1);
        }
        expectMostlyHits(ROUNDS);
      },
    );

    it(
      `delete on one store is seen by the other's very next read (${ROUNDS} times)`,
      LONG,
      async () => {
        for (let i = 0; i < ROUNDS; i++) {
          const created = await cachedOnA();
          await b.delete(created.id);
          expect(await a.get(created.id)).toBeNull();
        }
        expectMostlyHits(ROUNDS);
      },
    );

    it(
      `deleteByUser on one store is seen by the other's very next read (${ROUNDS} times)`,
      LONG,
      async () => {
        for (let i = 0; i < ROUNDS; i++) {
          const created = await cachedOnA({ userId: `user-${i}` });
          expect(await b.deleteByUser(created.userId)).toBe(1);
          expect(await a.get(created.id)).toBeNull();
        }
        expectMostlyHits(ROUNDS);
      },
    );

    it(
      'reads in flight while another store writes never keep what the write replaced',
      LONG,
      async () => {
        for (let i = 0; i < 100; i++) {
          const created = await cachedOnA({ data: { n: 0 } });
          await b.updateData(created.id, { set: { n: 1 }, remove: [], maxBytes: 8192 });
          // Misses in flight on A while B writes: an answer read before the write must not stick.
          const reads = Array.from({ length: 4 }, () => a.get(created.id));
          const write = b.updateData(created.id, { set: { n: 2 }, remove: [], maxBytes: 8192 });
          await Promise.all([...reads, write]);
          expect((await a.get(created.id))?.data).toEqual({ n: 2 });
          const racing = Array.from({ length: 4 }, () => a.get(created.id));
          await Promise.all([...racing, b.delete(created.id)]);
          expect(await a.get(created.id)).toBeNull();
        }
      },
    );

    it('keeps at most maxEntries records', async () => {
      for (let i = 0; i < 150; i++) {
        const created = record({ createdAt: Date.now(), idleExpiresAt: Date.now() + MINUTE });
        await a.create(created);
        await a.get(created.id);
      }
      expect(cacheOf(a).size()).toBe(100);
    });

    it('keeps serving while its heartbeat is answered, well past maxStaleness', async () => {
      const created = await cachedOnA();
      expect(hitRounds).toBe(1);
      const { maxStaleness } = cacheOf(a);
      await new Promise((resolve) => setTimeout(resolve, 3 * maxStaleness));
      const hits = cacheOf(a).stats().hitCount;
      expect((await a.get(created.id))?.id).toBe(created.id);
      expect(cacheOf(a).stats().hitCount).toBe(hits + 1);
    });

    it.skipIf(!harness.freezable)(
      'with its connection frozen, a session revoked through another store is refused within maxStaleness',
      async () => {
        const freezable = harness.freezable as NonNullable<typeof harness.freezable>;
        const c = await freezable.open();
        try {
          await until(() => cacheOf(c).active);
          const created = await cachedOnA({}, c);
          expect(hitRounds).toBe(1);
          const { maxStaleness } = cacheOf(c);
          freezable.freeze();
          const revokedAt = performance.now();
          // The writer is not frozen; it may wait for C's acknowledgement, at most maxStaleness.
          const revoked = b.delete(created.id);
          let lastServed = 0;
          let refusal: Promise<SessionRecord | null> | null = null;
          while (!refusal) {
            const startedAt = performance.now() - revokedAt;
            const read = c.get(created.id);
            const outcome = await Promise.race([
              read.then(
                (found) => (found ? 'served' : 'refused'),
                () => 'refused',
              ),
              new Promise((resolve) => setTimeout(resolve, 300, 'pending')),
            ]);
            if (outcome === 'served') lastServed = startedAt;
            else refusal = read;
            if (startedAt > 10 * maxStaleness) throw new Error('the cache never stopped serving');
          }
          expect(await revoked).toBe(true);
          // Past the bound the cache is off: reads go to the (frozen) backend.
          await until(() => !cacheOf(c).active, 2 * maxStaleness);
          console.info(
            `${name}: a revoked session was served for ${Math.round(lastServed)} ms on a frozen connection (bound ${maxStaleness} ms)`,
          );
          expect(lastServed).toBeLessThanOrEqual(maxStaleness);
          freezable.thaw();
          expect(await refusal.catch(() => null)).toBeNull();
          await until(() => cacheOf(c).active);
          expect(await c.get(created.id)).toBeNull();
        } finally {
          freezable.thaw();
          await c.close();
        }
      },
    );
  });
}

/** Polls `condition` every 5 ms until it holds; throws after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
