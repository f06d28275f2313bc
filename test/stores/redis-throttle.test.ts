import fc from 'fast-check';
import type { AttemptRule } from 'latchkey';
import type { RedisStore } from 'latchkey/stores/redis';
import { beforeEach, describe, expect, it } from 'vitest';
import { type AttemptWindow, consumeFrom } from '../../src/stores/throttle-window.js';
import { useRedisStore } from '../helpers/redis-server.js';

const T0 = Date.now();

describe('RedisStore login throttle', () => {
  const redis = useRedisStore();
  let store: RedisStore;
  beforeEach(() => {
    store = redis().store;
  });

  it('waits are looked up in the rule’s table, whatever its shape (no formula in Lua)', async () => {
    const rule: AttemptRule = {
      windowMs: 60_000,
      limit: 10,
      freeAttempts: 2,
      delays: [300, 50, 7000],
    };
    const key = 'account:table';
    expect((await store.consumeAttempt(key, T0, rule)).allowed).toBe(true);
    // The 2nd attempt is the last free one: it sets delays[0].
    expect((await store.consumeAttempt(key, T0, rule)).allowed).toBe(true);
    expect(await store.consumeAttempt(key, T0 + 299, rule)).toEqual({
      allowed: false,
      count: 2,
      retryAt: T0 + 300,
    });
    expect((await store.consumeAttempt(key, T0 + 300, rule)).count).toBe(3);
    expect((await store.consumeAttempt(key, T0 + 349, rule)).retryAt).toBe(T0 + 350);
    expect((await store.consumeAttempt(key, T0 + 350, rule)).count).toBe(4);
    // Past the end of the table, its last entry.
    expect((await store.consumeAttempt(key, T0 + 7349, rule)).retryAt).toBe(T0 + 7350);
    expect((await store.consumeAttempt(key, T0 + 7350, rule)).count).toBe(5);
    expect((await store.consumeAttempt(key, T0 + 14_349, rule)).retryAt).toBe(T0 + 14_350);
  });

  it('decides exactly as consumeFrom, the reference, over random attempt sequences', async () => {
    const rules = fc.record({
      windowMs: fc.integer({ min: 1, max: 5000 }),
      limit: fc.integer({ min: 1, max: 8 }),
      freeAttempts: fc.integer({ min: 0, max: 4 }),
      delays: fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 5 }),
    });
    const steps = fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 15 });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(rules, steps, async (rule, gaps) => {
        const key = `random:${run++}`;
        let window: AttemptWindow | null = null;
        let now = T0;
        for (const gap of gaps) {
          now += gap;
          const expected = consumeFrom(window, now, rule);
          if (expected.save) window = expected.save;
          expect(await store.consumeAttempt(key, now, rule)).toEqual(expected.decision);
        }
      }),
      { numRuns: 40 },
    );
  });
});
