import { Latchkey } from 'latchkey';
import { RedisStore } from 'latchkey/stores/redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PrivateRedis, redisServerUnavailable } from '../helpers/redis-server.js';

/**
 * FLUSHALL empties every process's validation cache. It empties the whole server, so this runs
 * on a redis-server of its own, never the shared one.
 */

const unavailable = await redisServerUnavailable();
if (unavailable && process.env.LATCHKEY_REQUIRE_SERVICES === '1') {
  throw new Error(`required (LATCHKEY_REQUIRE_SERVICES=1) but ${unavailable}`);
}

let redis: PrivateRedis;
beforeAll(async () => {
  if (unavailable) return;
  redis = await PrivateRedis.start(['--appendonly', 'no']);
});
afterAll(() => redis?.destroy());

describe.skipIf(unavailable !== null)('Redis validation cache and FLUSHALL', () => {
  it('FLUSHALL on the server drops every cached session in every process', async () => {
    // Two stores, two connections: as two latchkey processes sharing one Redis.
    const stores = await Promise.all([
      RedisStore.connect(redis.url, { cache: true }),
      RedisStore.connect(redis.url, { cache: true }),
    ]);
    try {
      const [a, b] = stores.map((store) => new Latchkey({ store })) as [Latchkey, Latchkey];
      const tokens = [];
      for (let i = 0; i < 20; i++) tokens.push((await a.create(`user-${i % 3}`)).token);
      for (const auth of [a, b]) {
        for (const token of tokens) {
          expect((await auth.validate(token)).session).not.toBeNull();
          expect((await auth.validate(token)).session).not.toBeNull();
        }
      }
      for (const store of stores) {
        expect(store.cache?.size()).toBe(20);
        expect(store.cache?.stats().hitCount).toBe(20);
      }

      expect((await redis.cli('FLUSHALL')).trim()).toBe('OK');
      for (const store of stores) {
        await vi.waitFor(() => expect(store.cache?.size()).toBe(0), { timeout: 2000 });
      }
      for (const auth of [a, b]) {
        for (const token of tokens) expect((await auth.validate(token)).reason).toBe('not_found');
      }
      // Every read after the flush went to the server: not one more hit.
      for (const store of stores) expect(store.cache?.stats().hitCount).toBe(20);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });
});
