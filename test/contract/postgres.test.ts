import { PostgresStore } from 'latchkey/stores/postgres';
import {
  dropSchema,
  POSTGRES_URL,
  postgresUnavailable,
  randomSchema,
} from '../helpers/postgres-server.js';
import { describeRememberStore } from './remember-store-contract.js';
import { describeSessionStore } from './session-store-contract.js';
import { describeThrottleStore } from './throttle-store-contract.js';
import { describeUserStore } from './user-store-contract.js';

function harness(cache: boolean) {
  let schema = '';
  return {
    unavailable: () => postgresUnavailable(POSTGRES_URL),
    async open() {
      schema = randomSchema();
      return PostgresStore.connect(POSTGRES_URL, { schema, cache });
    },
    async cleanup() {
      await dropSchema(schema);
    },
  };
}

describeSessionStore('postgres', harness(false));
describeUserStore('postgres', harness(false));
describeThrottleStore('postgres', harness(false));
describeRememberStore('postgres', harness(false));
// The same answers with the validation cache on: a cached read must never differ from PostgreSQL.
describeSessionStore('postgres (validation cache)', harness(true));
