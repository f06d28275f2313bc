import { beforeEach, describe, expect, it } from 'vitest';
import type { ThrottleStore } from '../core/capabilities.js';
import { attemptRuleOf } from '../core/throttle.js';
import { type StoreHarness, useStore } from './harness.js';

const T0 = Date.now();
/** 3 free attempts, then 1 s doubling to 8 s; 10 per hour. */
const rule = attemptRuleOf({
  windowMs: 3_600_000,
  limit: 10,
  freeAttempts: 3,
  baseDelayMs: 1000,
  maxDelayMs: 8000,
});

/** The ThrottleStore capability: atomic attempt counting with the core's wait table. */
export function describeThrottleStore(
  name: string,
  harness: StoreHarness<ThrottleStore & { close(): Promise<void> }>,
): void {
  describe(`ThrottleStore contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: ThrottleStore;
    beforeEach(() => {
      store = current();
    });

    it('free attempts pass back to back, then delays double up to the maximum', async () => {
      const key = 'account:ada';
      for (let i = 1; i <= 2; i++) {
        expect(await store.consumeAttempt(key, T0, rule)).toEqual({
          allowed: true,
          count: i,
          retryAt: T0,
        });
      }
      // The third attempt is the last free one: it passes and sets a 1 s delay.
      expect((await store.consumeAttempt(key, T0, rule)).allowed).toBe(true);
      expect(await store.consumeAttempt(key, T0 + 999, rule)).toEqual({
        allowed: false,
        count: 3,
        retryAt: T0 + 1000,
      });
      expect((await store.consumeAttempt(key, T0 + 1000, rule)).count).toBe(4);
      expect((await store.consumeAttempt(key, T0 + 2999, rule)).allowed).toBe(false);
      expect((await store.consumeAttempt(key, T0 + 3000, rule)).count).toBe(5);
      // 4 s, then 8 s, then capped at 8 s.
      expect((await store.consumeAttempt(key, T0 + 7000, rule)).count).toBe(6);
      expect((await store.consumeAttempt(key, T0 + 15_000, rule)).count).toBe(7);
      expect((await store.consumeAttempt(key, T0 + 22_999, rule)).retryAt).toBe(T0 + 23_000);
    });

    it('at the limit, attempts are refused until the window ends', async () => {
      const flat = { ...rule, freeAttempts: 100 };
      for (let i = 0; i < 10; i++) await store.consumeAttempt('ip:1', T0, flat);
      expect(await store.consumeAttempt('ip:1', T0 + 10, flat)).toEqual({
        allowed: false,
        count: 10,
        retryAt: T0 + rule.windowMs,
      });
      const next = await store.consumeAttempt('ip:1', T0 + rule.windowMs, flat);
      expect(next).toEqual({ allowed: true, count: 1, retryAt: T0 + rule.windowMs });
    });

    it('a parallel burst never counts past the limit', async () => {
      const flat = { ...rule, freeAttempts: 1000 };
      const decisions = await Promise.all(
        Array.from({ length: 50 }, () => store.consumeAttempt('burst', T0, flat)),
      );
      expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
      expect(Math.max(...decisions.map((d) => d.count))).toBe(10);
    });

    it('a parallel burst inside the free attempts lets exactly the free ones through', async () => {
      const decisions = await Promise.all(
        Array.from({ length: 20 }, () => store.consumeAttempt('burst2', T0, rule)),
      );
      expect(decisions.filter((d) => d.allowed)).toHaveLength(3);
    });

    it('keys are independent and reset forgets one key', async () => {
      const flat = { ...rule, limit: 1 };
      await store.consumeAttempt('a', T0, flat);
      expect((await store.consumeAttempt('a', T0, flat)).allowed).toBe(false);
      expect((await store.consumeAttempt('b', T0, flat)).allowed).toBe(true);
      await store.resetAttempts('a');
      expect((await store.consumeAttempt('a', T0, flat)).allowed).toBe(true);
    });

    it('deleteExpiredAttempts removes ended windows only', async () => {
      await store.consumeAttempt('old', T0, { ...rule, windowMs: 1000 });
      await store.consumeAttempt('new', T0, rule);
      expect(await store.deleteExpiredAttempts(T0 + 1000)).toBe(1);
      expect((await store.consumeAttempt('new', T0, { ...rule, limit: 1 })).allowed).toBe(false);
    });
  });
}
