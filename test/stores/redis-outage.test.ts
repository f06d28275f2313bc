import { Latchkey, RETRY_AFTER_SECONDS, StoreUnavailableError } from 'latchkey';
import { RedisStore } from 'latchkey/stores/redis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestWith, untilAnswering } from '../helpers/outage.js';
import { PrivateRedis, randomPrefix, redisServerUnavailable } from '../helpers/redis-server.js';

let server: PrivateRedis | null = null;

beforeEach(async (context) => {
  const reason = await redisServerUnavailable();
  if (reason) {
    if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(reason);
    console.warn(`skipping: ${reason}`);
    context.skip();
  }
  server = await PrivateRedis.start();
});
afterEach(async () => {
  await server?.destroy();
  server = null;
});

describe('Redis outage', () => {
  for (const cache of [false, true]) {
    it(`fails closed while Redis is down and recovers without a new store${cache ? ' (validation cache on)' : ''}`, async () => {
      const redis = server as PrivateRedis;
      const store = await RedisStore.connect(redis.url, { prefix: randomPrefix(), cache });
      const auth = new Latchkey({ store });
      const before = await Promise.all(
        Array.from({ length: 20 }, (_, i) => auth.create(`user-${i}`)),
      );
      const { token } = before[0] as { token: string };
      expect((await auth.validate(token)).session).not.toBeNull();
      expect((await auth.authenticate(requestWith(token))).ok).toBe(true);

      await redis.stop();
      const started = Date.now();
      await expect(auth.validate(token)).rejects.toBeInstanceOf(StoreUnavailableError);
      const denied = await auth.authenticate(requestWith(token));
      expect(denied.ok).toBe(false);
      if (!denied.ok) {
        expect(denied.reason).toBe('unavailable');
        expect(denied.denial.status).toBe(503);
        expect(denied.denial.headers['retry-after']).toBe(String(RETRY_AFTER_SECONDS));
      }
      await expect(auth.create('user-new')).rejects.toBeInstanceOf(StoreUnavailableError);
      // Fails fast: no offline queue holding requests until Redis returns.
      expect(Date.now() - started).toBeLessThan(1000);
      if (cache) expect(store.cache?.active).toBe(false);

      await redis.resume();
      const recoveredIn = await untilAnswering(auth, token);
      console.info(`redis store answered again ${recoveredIn} ms after the restart`);
      expect((await auth.authenticate(requestWith(token))).ok).toBe(true);
      for (const { token: earlier } of before) {
        expect((await auth.validate(earlier)).session).not.toBeNull();
      }
      if (cache) {
        expect(store.cache?.active).toBe(true);
        const hits = store.cache?.stats().hitCount ?? 0;
        await auth.validate(token);
        await auth.validate(token);
        expect(store.cache?.stats().hitCount).toBeGreaterThan(hits);
      }
      await store.close();
    });
  }

  it('a store opened while Redis is down answers unavailable, then works once Redis starts', async () => {
    const redis = server as PrivateRedis;
    await redis.stop();
    const store = new RedisStore(redis.url, { prefix: randomPrefix(), connectTimeout: 300 });
    const auth = new Latchkey({ store });
    await expect(auth.create('user-1')).rejects.toBeInstanceOf(StoreUnavailableError);
    await redis.resume();
    let issued: { token: string } | null = null;
    for (let i = 0; i < 100 && !issued; i++) {
      issued = await auth.create('user-1').catch(() => null);
      if (!issued) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(issued).not.toBeNull();
    expect((await auth.validate((issued as { token: string }).token)).session).not.toBeNull();
    await store.close();
  });
});
