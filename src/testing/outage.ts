import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../core/errors.js';
import { Latchkey } from '../core/latchkey.js';
import type { SessionRecord, SessionStore } from '../core/store.js';
import { RETRY_AFTER_SECONDS } from '../http/shared.js';
import { type StoreHarness, useStore } from './harness.js';
import { liveRecord as live, MINUTE, record } from './records.js';
import { until, type ValidationCacheView } from './validation-cache.js';

/**
 * How {@link describeOutage} opens its store: one that reaches its backend through something the
 * suite can cut (connections dropped, new ones refused: a server gone or a network down) and
 * restore, with the data kept across the cut.
 */
export interface OutageHarness<S extends SessionStore> extends StoreHarness<S> {
  /** A fresh, isolated store, connected through what `cut` cuts. */
  open(): Promise<S>;
  /** Cuts the store off its backend; resolves once it is cut. */
  cut(): Promise<void>;
  /** Lets it reach the backend again (same data); the store must find it by itself. */
  restore(): Promise<void>;
  /** The store's validation cache, when it has one turned on: its staleness bound is tested. */
  cache?(store: S): ValidationCacheView | null;
  /** How long a call may take to reject while cut, in ms (give the store's timeouts). Default 2,000. */
  callTimeout?: number;
}

/** How long a restored backend may take to answer the store again. */
const RECOVERY_MS = 15_000;

/**
 * A backend that cannot be reached: every call rejects (never "no session"), soon, and nothing
 * written before the cut is lost or half-written after it.
 */
export function describeOutage<S extends SessionStore>(
  name: string,
  harness: OutageHarness<S>,
): void {
  const callTimeout = harness.callTimeout ?? 2000;

  describe(`outage: ${name}`, () => {
    const open = useStore(name, harness);
    let cut = false;
    // Registered after useStore's: vitest runs it first, so the store closes on a restored link.
    afterEach(async () => {
      if (cut) await restore();
    });

    async function cutOff(): Promise<number> {
      cut = true;
      await harness.cut();
      return performance.now();
    }

    async function restore(): Promise<void> {
      cut = false;
      await harness.restore();
    }

    /**
     * Stores `created` and reads it twice (so a validation cache holds it); gives it as read. The
     * outage cases compare with that: round-tripping is the session contract's to test.
     */
    async function stored(created: SessionRecord = live()): Promise<SessionRecord> {
      await open().create(created);
      const read = await open().get(created.id);
      if (!read) throw new Error('a session just created reads as none');
      expect(await open().get(created.id)).toEqual(read);
      return read;
    }

    /** Reads `id` until the restored backend answers; gives the answer. */
    async function readOnceAnswering(id: string): Promise<SessionRecord | null> {
      const started = Date.now();
      for (;;) {
        try {
          return await open().get(id);
        } catch (error) {
          if (Date.now() - started > RECOVERY_MS) throw error;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    }

    /**
     * Reads the cached session `created` while cut, until a read rejects: reads that start within
     * the staleness bound may still serve it, none may say "no session". Gives how long after the
     * cut the last served read started.
     */
    async function readUntilRefused(created: SessionRecord, cutAt: number): Promise<number> {
      const view = harness.cache?.(open()) ?? null;
      const bound = view ? view.maxStaleness : 0;
      let lastServed = -1;
      for (;;) {
        const startedAt = performance.now() - cutAt;
        const outcome = await settleWithin(open().get(created.id), callTimeout);
        if (outcome.status === 'rejected') return lastServed;
        // Served once cut: only a validation cache may, only the very record, and only briefly.
        expect(outcome.value).toEqual(created);
        expect(startedAt).toBeLessThanOrEqual(bound);
        lastServed = startedAt;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }

    it('while cut, get, create, touch and delete reject (never null or false), none hangs', async () => {
      const created = await stored();
      const cutAt = await cutOff();
      await readUntilRefused(created, cutAt);
      const fresh = record({ createdAt: Date.now(), idleExpiresAt: Date.now() + MINUTE });
      const calls: [string, () => Promise<unknown>][] = [
        ['get of the session', () => open().get(created.id)],
        ['get of an unknown id', () => open().get(newId())],
        ['create', () => open().create(fresh)],
        ['touch', () => open().touch(created.id, Date.now(), Date.now() + 30 * MINUTE)],
        ['delete', () => open().delete(created.id)],
      ];
      for (const [call, run] of calls) {
        const outcome = await settleWithin(run(), callTimeout);
        expect(outcome, `${call} while cut`).toMatchObject({ status: 'rejected' });
      }
    });

    it('sessions created before the cut are there again after restore, unchanged', async () => {
      const before = await Promise.all(
        Array.from({ length: 20 }, (_, i) => stored(live({ userId: `user-${i}` }))),
      );
      const first = before[0] as SessionRecord;
      const cutAt = await cutOff();
      await readUntilRefused(first, cutAt);
      await restore();
      expect(await readOnceAnswering(first.id)).toEqual(first);
      for (const created of before) expect(await open().get(created.id)).toEqual(created);
      // And the same store writes again, without being reopened.
      const after = await stored();
      expect(await open().delete(after.id)).toBe(true);
    });

    it('deletes and creates cut off mid-flight either happened or did not: never half', async () => {
      const existing = await Promise.all(Array.from({ length: 20 }, () => stored()));
      const template = live();
      const fresh = Array.from({ length: 20 }, () => ({ ...template, id: newId() }));
      // How a record like these reads when no outage got in the way (ids aside).
      const control = await stored({ ...template, id: newId() });
      const asRead = (created: SessionRecord) => ({ ...control, id: created.id });
      const deletes = Promise.allSettled(existing.map((created) => open().delete(created.id)));
      const creates = Promise.allSettled(fresh.map((created) => open().create(created)));
      await cutOff();
      const [deleted, createdOutcomes] = await Promise.all([
        settleWithin(deletes, callTimeout),
        settleWithin(creates, callTimeout),
      ]);
      await restore();
      if (deleted.status !== 'fulfilled' || createdOutcomes.status !== 'fulfilled') {
        throw new Error('allSettled never rejects');
      }
      await readOnceAnswering(newId());
      for (const [i, outcome] of deleted.value.entries()) {
        const original = existing[i] as SessionRecord;
        const found = await open().get(original.id);
        if (outcome.status === 'fulfilled') {
          // It existed: a delete that answered must say so, and have deleted it.
          expect(outcome.value).toBe(true);
          expect(found).toBeNull();
        } else if (found !== null) {
          expect(found).toEqual(original);
        }
      }
      for (const [i, outcome] of createdOutcomes.value.entries()) {
        const wanted = fresh[i] as SessionRecord;
        const found = await open().get(wanted.id);
        if (outcome.status === 'fulfilled') expect(found).toEqual(asRead(wanted));
        else if (found !== null) expect(found).toEqual(asRead(wanted));
      }
    });

    // Only for a store with its validation cache on.
    if (harness.cache)
      it('a cached session is served at most maxStaleness after the cut; the cache serves again after restore', async () => {
        const view = harness.cache?.(open());
        if (!view) throw new Error('the harness gives a cache view but the store has no cache on');
        await until(() => view.active);
        const created = await stored();
        const cutAt = await cutOff();
        const lastServed = await readUntilRefused(created, cutAt);
        const served = lastServed < 0 ? 'never served' : `last served ${Math.round(lastServed)} ms`;
        console.info(
          `${name}: a cached session was ${served} into the cut (bound ${view.maxStaleness} ms)`,
        );
        await until(() => !view.active, 2 * view.maxStaleness);
        await restore();
        expect(await readOnceAnswering(created.id)).toEqual(created);
        await until(() => view.active, RECOVERY_MS);
        await open().get(created.id);
        const hits = view.stats().hitCount;
        expect(await open().get(created.id)).toEqual(created);
        expect(view.stats().hitCount).toBe(hits + 1);
      });

    it("through the engine: a cut is a 503 denial ('unavailable'), never a sign-in or a sign-out", async () => {
      const auth = new Latchkey({ store: open() });
      const { token } = await auth.create('user-1');
      expect((await auth.authenticate(requestWith(token))).ok).toBe(true);
      await cutOff();
      const started = performance.now();
      // Past any validation cache's bound, every answer is a denial.
      const bound = harness.cache?.(open())?.maxStaleness ?? 0;
      let denied = await auth.authenticate(requestWith(token));
      while (denied.ok && performance.now() - started <= bound + callTimeout) {
        denied = await auth.authenticate(requestWith(token));
      }
      expect(denied.ok).toBe(false);
      if (!denied.ok) {
        expect(denied.reason).toBe('unavailable');
        expect(denied.denial.status).toBe(503);
        expect(denied.denial.headers['retry-after']).toBe(String(RETRY_AFTER_SECONDS));
        expect(denied.setCookie).toEqual([]);
      }
      await expect(auth.validate(token)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(auth.create('user-2')).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(performance.now() - started).toBeLessThan(bound + 3 * callTimeout);
      await restore();
      await readOnceAnswering(newId());
      expect((await auth.authenticate(requestWith(token))).ok).toBe(true);
    });
  });
}

/** How `promise` settled, or a failure naming the hang when it did not within `ms`. */
async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`a call did not settle within ${ms} ms`)), ms);
  });
  try {
    const [outcome] = await Promise.race([Promise.allSettled([promise]), hung]);
    return outcome as PromiseSettledResult<T>;
  } finally {
    clearTimeout(timer);
  }
}

/** A session id no store holds. */
function newId(): string {
  return randomBytes(32).toString('base64url');
}

/** An API request carrying a session token in latchkey's default cookie. */
function requestWith(token: string): Request {
  return new Request('http://localhost/api/me', {
    headers: { cookie: `__Host-session=${token}`, accept: 'application/json' },
  });
}
