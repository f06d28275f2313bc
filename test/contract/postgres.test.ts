import { PostgresStore } from 'latchkey/stores/postgres';
import {
  describeDataPatch,
  describeExpirySweep,
  describeLatchkeyStore,
  describeSessionIndex,
  describeSessionStore,
  record,
  type StoreHarness,
} from 'latchkey/testing';
import {
  dropSchema,
  POSTGRES_URL,
  postgresUnavailable,
  randomSchema,
} from '../helpers/postgres-server.js';

function harness(cache: boolean): StoreHarness<PostgresStore> {
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
    // A row whose `user` is not JSON, as a hand edit or another program could leave it.
    async corrupt(store, id) {
      const r = record({ id });
      await store.pool.query(
        `INSERT INTO "${store.schema}".latchkey_sessions (id, user_id, created_at, last_seen_at,
           idle_expires_at, absolute_expires_at, authenticated_at, ip, user_agent, "user", data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '{"name": "Ada"', '{}')`,
        [
          r.id,
          r.userId,
          r.createdAt,
          r.lastSeenAt,
          r.idleExpiresAt,
          r.absoluteExpiresAt,
          r.authenticatedAt,
          r.ip,
          r.userAgent,
        ],
      );
    },
  };
}

describeLatchkeyStore('postgres', harness(false));
// The same answers with the validation cache on: a cached read must never differ from PostgreSQL.
const cached = harness(true);
describeSessionStore('postgres (validation cache)', cached);
describeSessionIndex('postgres (validation cache)', cached);
describeDataPatch('postgres (validation cache)', cached);
describeExpirySweep('postgres (validation cache)', cached);
