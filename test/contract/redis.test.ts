import { RedisStore } from 'latchkey/stores/redis';
import {
  deletePrefix,
  REDIS_URL,
  randomPrefix,
  redisUnavailable,
} from '../helpers/redis-server.js';
import { describeRememberStore } from './remember-store-contract.js';
import { describeSessionStore } from './session-store-contract.js';
import { describeThrottleStore } from './throttle-store-contract.js';
import { describeUserStore } from './user-store-contract.js';

function harness(cache: boolean) {
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
  };
}

describeSessionStore('redis', harness(false));
describeUserStore('redis', harness(false));
describeThrottleStore('redis', harness(false));
describeRememberStore('redis', harness(false));
// The same answers with the validation cache on: a cached read must never differ from Redis.
describeSessionStore('redis (validation cache)', harness(true));
