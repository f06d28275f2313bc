import { Latchkey, StoreUnavailableError } from 'latchkey';
import { RedisStore } from 'latchkey/stores/redis';
import { describeOutage } from 'latchkey/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PrivateRedis, randomPrefix, redisServerUnavailable } from '../helpers/redis-server.js';

// The outage is a private redis-server stopped (SIGTERM) and started again on its port and data.
for (const cache of [false, true]) {
  let outage: PrivateRedis | null = null;
  describeOutage<RedisStore>(`redis${cache ? ' (validation cache on)' : ''}`, {
    unavailable: redisServerUnavailable,
    async open() {
      outage = await PrivateRedis.start();
      return RedisStore.connect(outage.url, { prefix: randomPrefix(), cache });
    },
    cut: async () => outage?.stop(),
    restore: async () => outage?.resume(),
    ...(cache ? { cache: (store: RedisStore) => store.cache } : {}),
    // No offline queue: a call on a dropped connection fails at once.
    callTimeout: 1000,
    async cleanup() {
      await outage?.destroy();
      outage = null;
    },
  });
}

describe('Redis outage', () => {
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
