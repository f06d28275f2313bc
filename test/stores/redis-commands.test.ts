import { Latchkey } from 'latchkey';
import { RedisStore } from 'latchkey/stores/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivateRedis, randomPrefix, redisServerUnavailable } from '../helpers/redis-server.js';

let server: PrivateRedis | null = null;
let skipReason: string | null = null;

beforeAll(async () => {
  skipReason = await redisServerUnavailable();
  if (skipReason === null) server = await PrivateRedis.start();
});
afterAll(async () => {
  await server?.destroy();
});

/** Commands the server executed, all clients together, from INFO commandstats (INFO excluded). */
async function commandsExecuted(admin: {
  info(section: string): Promise<unknown>;
}): Promise<number> {
  const stats = String(await admin.info('commandstats'));
  let total = 0;
  for (const [, name, calls] of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name !== 'info') total += Number(calls);
  }
  return total;
}

describe('Redis commands per validation', () => {
  for (const [label, cache, most] of [
    ['without the cache', false, 1000],
    ['with the cache', true, 5],
  ] as const) {
    it(`1,000 validations of one session within a touch interval cost at most ${most} commands ${label}`, async (context) => {
      if (skipReason) {
        if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(skipReason);
        console.warn(`skipping: ${skipReason}`);
        context.skip();
      }
      const url = (server as PrivateRedis).url;
      const store = await RedisStore.connect(url, { prefix: randomPrefix(), cache });
      const auth = new Latchkey({ store, touchInterval: '1m' });
      const { token } = await auth.create('user-1', { user: { name: 'Ada' } });
      // One admin connection for both readings, so only the store's traffic is in the difference.
      const admin = createClient({ url });
      await admin.connect();
      const before = await commandsExecuted(admin);
      for (let i = 0; i < 1000; i++) {
        const { session } = await auth.validate(token);
        expect(session?.user).toEqual({ name: 'Ada' });
      }
      const used = (await commandsExecuted(admin)) - before;
      admin.destroy();
      await store.close();
      console.info(`redis commands for 1,000 validations ${label}: ${used}`);
      expect(used).toBeLessThanOrEqual(most);
      if (!cache) expect(used).toBeGreaterThanOrEqual(1000);
    });
  }
});
