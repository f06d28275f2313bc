import { RedisStore } from 'latchkey/stores/redis';
import { describeLatchkeyStore, type StoreHarness } from 'latchkey/testing';
import {
  deletePrefix,
  REDIS_URL,
  randomPrefix,
  redisUnavailable,
  writeUndecodableSession,
} from '../helpers/redis-server.js';

function harness(cache: boolean): StoreHarness<RedisStore> {
  let prefix = '';
  return {
    unavailable: () => redisUnavailable(REDIS_URL),
    async open() {
      prefix = randomPrefix();
      return RedisStore.connect(REDIS_URL, { prefix, cache });
    },
    async cleanup() {
      await deletePrefix(REDIS_URL, prefix);
    },
    corrupt: (store, id) => writeUndecodableSession(store.client, `${prefix}s:${id}`),
  };
}

describeLatchkeyStore('redis', harness(false));
// The same answers with the validation cache on: a cached read must never differ from Redis.
describeLatchkeyStore('redis (validation cache)', harness(true));
