import { randomBytes } from 'node:crypto';
import { Latchkey, RETRY_AFTER_SECONDS, StoreUnavailableError } from 'latchkey';
import { PostgresStore } from 'latchkey/stores/postgres';
import { describeOutage } from 'latchkey/testing';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FreezeProxy } from '../helpers/freeze-proxy.js';
import { requestWith, untilAnswering } from '../helpers/outage.js';
import {
  admin,
  dropSchema,
  POSTGRES_URL,
  postgresTarget,
  postgresUnavailable,
  postgresUrlVia,
  randomSchema,
  requirePostgres,
  terminate,
} from '../helpers/postgres-server.js';
import { Relay } from '../helpers/relay.js';

/** Waits until `count` statements of `applicationName` wait on a lock (so they are in flight). */
async function untilWaitingOnLock(applicationName: string, count: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    const [row] = await admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE application_name = $1 AND wait_event_type = 'Lock'`,
      [applicationName],
    );
    if ((row?.n ?? 0) >= count) return;
    if (Date.now() - started > 10_000) throw new Error('the calls never reached PostgreSQL');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}

// The outage is a relay in front of the shared server, cut (connections dropped, new ones refused).
for (const cache of [false, true]) {
  let relay: Relay | null = null;
  let outageSchema = '';
  describeOutage<PostgresStore>(`postgres${cache ? ' (validation cache on)' : ''}`, {
    unavailable: () => postgresUnavailable(),
    async open() {
      outageSchema = randomSchema();
      relay = await Relay.start(postgresTarget());
      return PostgresStore.connect(postgresUrlVia(relay.port), {
        schema: outageSchema,
        cache,
        connectTimeout: 500,
      });
    },
    cut: async () => relay?.cut(),
    restore: async () => relay?.resume(),
    ...(cache ? { cache: (store: PostgresStore) => store.cache } : {}),
    callTimeout: 1000,
    async cleanup() {
      await relay?.cut();
      relay = null;
      await dropSchema(outageSchema);
    },
  });
}

describe('PostgreSQL outage', () => {
  let schema = '';
  let store: PostgresStore | null = null;

  beforeEach(async (context) => {
    await requirePostgres(context);
    schema = randomSchema();
  });
  afterEach(async () => {
    await store?.close();
    store = null;
    if (schema) await dropSchema(schema);
  });

  for (const cache of [false, true]) {
    const label = cache ? ' (validation cache on)' : '';

    it(`calls in flight when the server kills the store's connections fail closed; the next ones work${label}`, async () => {
      const applicationName = `latchkey-outage-${randomBytes(4).toString('hex')}`;
      const url = new URL(POSTGRES_URL);
      url.searchParams.set('application_name', applicationName);
      store = await PostgresStore.connect(url.toString(), { schema, cache });
      const auth = new Latchkey({ store, maxSessionsPerUser: 5 });
      const before = await Promise.all(
        Array.from({ length: 20 }, (_, i) => auth.create(`user-${i}`)),
      );
      const { token } = before[0] as { token: string };
      expect((await auth.authenticate(requestWith(token))).ok).toBe(true);
      if (cache) await until(() => store?.cache?.active === true);

      // Hold the sessions table so the store's next statements are in flight when it is killed.
      const blocker = new pg.Client({ connectionString: POSTGRES_URL });
      await blocker.connect();
      await blocker.query(
        `BEGIN; LOCK TABLE "${schema}".latchkey_sessions IN ACCESS EXCLUSIVE MODE`,
      );
      const inFlight = [
        auth.validate((before[1] as { token: string }).token),
        auth.authenticate(requestWith((before[2] as { token: string }).token)),
        auth.create('user-0'),
        auth.revokeAllForUser('user-3'),
      ] as const;
      const settled = Promise.allSettled(inFlight);
      await untilWaitingOnLock(applicationName, inFlight.length);
      expect(await terminate(applicationName)).toBeGreaterThan(0);
      if (cache) expect(await terminate(`latchkey cache ${schema}`)).toBe(1);
      const [validated, authenticated, created, revoked] = await settled;
      for (const outcome of [validated, created, revoked]) {
        expect(outcome?.status).toBe('rejected');
        if (outcome?.status === 'rejected') {
          expect(outcome.reason).toBeInstanceOf(StoreUnavailableError);
        }
      }
      expect(authenticated?.status).toBe('fulfilled');
      if (authenticated?.status === 'fulfilled') {
        const denied = authenticated.value;
        expect(denied.ok).toBe(false);
        if (!denied.ok) {
          expect(denied.reason).toBe('unavailable');
          expect(denied.denial.status).toBe(503);
          expect(denied.denial.headers['retry-after']).toBe(String(RETRY_AFTER_SECONDS));
        }
      }
      await blocker.query('ROLLBACK');
      await blocker.end();

      // The same store, no restart: the pool replaced the killed connections.
      const recoveredIn = await untilAnswering(auth, token);
      console.info(
        `postgres store answered again ${recoveredIn} ms after its connections were killed${label}`,
      );
      expect((await auth.authenticate(requestWith(token))).ok).toBe(true);
      for (const { token: earlier } of before) {
        expect((await auth.validate(earlier)).session).not.toBeNull();
      }
      if (cache) {
        await until(() => store?.cache?.active === true);
        const hits = store.cache?.stats().hitCount ?? 0;
        await auth.validate(token);
        await auth.validate(token);
        expect(store.cache?.stats().hitCount).toBeGreaterThan(hits);
      }
    });
  }

  it('a network that goes silent (no FIN, no RST) fails calls with 503 after queryTimeout, never hangs', async () => {
    const proxy = await FreezeProxy.start(postgresTarget());
    try {
      store = await PostgresStore.connect(postgresUrlVia(proxy.port), {
        schema,
        queryTimeout: 500,
      });
      const auth = new Latchkey({ store });
      const { token } = await auth.create('user-1');
      expect((await auth.validate(token)).session?.userId).toBe('user-1');
      proxy.freeze();
      const started = Date.now();
      await expect(auth.validate(token)).rejects.toBeInstanceOf(StoreUnavailableError);
      const denied = await auth.authenticate(requestWith(token));
      expect(denied.ok).toBe(false);
      if (!denied.ok) expect(denied.denial.status).toBe(503);
      // Two calls, each given up after 500 ms (or at once, once the pool is waiting on a dead one).
      expect(Date.now() - started).toBeLessThan(4000);
      proxy.thaw();
    } finally {
      await store?.close();
      store = null;
      await proxy.close();
    }
  });

  it('queryTimeout must be a whole number of milliseconds', async () => {
    for (const queryTimeout of [0, 1.5, -1]) {
      await expect(PostgresStore.connect(POSTGRES_URL, { schema, queryTimeout })).rejects.toThrow(
        'queryTimeout: must be a whole number of milliseconds >= 1',
      );
    }
  });
});
