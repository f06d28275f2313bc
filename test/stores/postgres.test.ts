import { randomBytes } from 'node:crypto';
import { ConfigError, Latchkey, type SessionRecord, Sessions } from 'latchkey';
import { migrate, PostgresStore } from 'latchkey/stores/postgres';
import { factor } from 'latchkey/testing';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attemptRuleOf } from '../../src/core/throttle.js';
import { migrateUpTo } from '../../src/stores/postgres/migrations.js';
import { FakeClock } from '../helpers/clock.js';
import {
  admin,
  countingPool,
  dropSchema,
  POSTGRES_URL,
  randomSchema,
  requirePostgres,
  terminate,
} from '../helpers/postgres-server.js';

const MINUTE = 60_000;
let schema = '';
let cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async (context) => {
  await requirePostgres(context);
  schema = randomSchema();
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
  if (schema) await dropSchema(schema);
});

/** A store on a pool of its own (as a separate process would have), closed after the test. */
async function openStore(
  options: {
    cache?: boolean | { maxEntries?: number };
    applicationName?: string;
    maxConnections?: number;
  } = {},
) {
  const url = new URL(POSTGRES_URL);
  if (options.applicationName) url.searchParams.set('application_name', options.applicationName);
  const counted = countingPool(
    url.toString(),
    options.maxConnections ? { max: options.maxConnections } : {},
  );
  const store = new PostgresStore(counted.pool, {
    schema,
    ...(options.cache === undefined ? {} : { cache: options.cache }),
  });
  cleanups.push(async () => {
    await store.close();
    await counted.pool.end();
  });
  await store.migrations();
  if (store.cache) await until(() => store.cache?.active === true);
  return { store, ...counted };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}

function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    id: randomBytes(32).toString('base64url'),
    userId: 'ada',
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: now + 30 * MINUTE,
    absoluteExpiresAt: now + 720 * MINUTE,
    authenticatedAt: now,
    aal: 1,
    amr: [],
    ip: null,
    userAgent: null,
    user: {},
    data: {},
    ...overrides,
  };
}

describe('PostgreSQL migrations', () => {
  it('are versioned and idempotent', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL });
    cleanups.push(() => pool.end());
    expect(await migrate(pool, { schema })).toEqual({ applied: [1, 2], version: 2 });
    expect(await migrate(pool, { schema })).toEqual({ applied: [], version: 2 });
    const rows = await admin<{ version: number; name: string }>(
      `SELECT version, name FROM "${schema}".latchkey_migrations ORDER BY version`,
    );
    expect(rows.map((row) => row.version)).toEqual([1, 2]);
    // A store opened on a migrated schema applies nothing.
    const store = new PostgresStore(pool, { schema });
    expect(await store.migrations()).toEqual({ applied: [], version: 2 });
    await store.close();
  });

  it('several migrators starting at once apply each version exactly once', async () => {
    const pools = Array.from({ length: 6 }, () => new pg.Pool({ connectionString: POSTGRES_URL }));
    cleanups.push(() => Promise.all(pools.map((pool) => pool.end())));
    const reports = await Promise.all(pools.map((pool) => migrate(pool, { schema })));
    expect(reports.filter((report) => report.applied.length > 0)).toEqual([
      { applied: [1, 2], version: 2 },
    ]);
    expect(reports.every((report) => report.version === 2)).toBe(true);
  });

  it('a session stored before version 2 reads as level 1 with no methods after it', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL });
    cleanups.push(() => pool.end());
    expect(await migrateUpTo(pool, { schema }, 1)).toEqual({ applied: [1], version: 1 });
    const old = record({ data: { theme: 'dark' } });
    // The row as version 1 wrote it: its 11 columns, no aal or amr.
    await admin(
      `INSERT INTO "${schema}".latchkey_sessions (id, user_id, created_at, last_seen_at,
         idle_expires_at, absolute_expires_at, authenticated_at, ip, user_agent, "user", data)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '{}', '{"theme":"dark"}')`,
      [
        old.id,
        old.userId,
        old.createdAt,
        old.lastSeenAt,
        old.idleExpiresAt,
        old.absoluteExpiresAt,
        old.authenticatedAt,
        old.ip,
        old.userAgent,
      ],
    );
    expect(await migrate(pool, { schema })).toEqual({ applied: [2], version: 2 });
    const store = new PostgresStore(pool, { schema });
    cleanups.push(() => store.close());
    expect(await store.get(old.id)).toEqual({ ...old, aal: 1, amr: [] });
    expect(await store.listByUser(old.userId, old.createdAt)).toEqual([old]);
    // The new columns take what later sessions carry.
    const stepped = record({ aal: 2, amr: ['pwd', 'otp', 'mfa'] });
    await store.create(stepped);
    expect(await store.get(stepped.id)).toEqual(stepped);
  });

  it('refuses a schema name that is not a plain identifier', () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL });
    cleanups.push(() => pool.end());
    expect(() => new PostgresStore(pool, { schema: 'x"; DROP TABLE y; --' })).toThrow(/schema/);
    expect(() => new PostgresStore(pool, { schema: 'a'.repeat(49) })).toThrow(/schema/);
  });
});

describe('PostgreSQL store', () => {
  it('a validation is one indexed query; a refresh adds one write', async () => {
    const { store, count, reset } = await openStore();
    const clock = new FakeClock(Date.now());
    const auth = new Latchkey({ store, clock: clock.now });
    const { token, session } = await auth.create('ada');
    reset();
    for (let i = 0; i < 10; i++) expect((await auth.validate(token)).session).not.toBeNull();
    expect(count()).toBe(10);
    clock.advance(2 * MINUTE);
    reset();
    expect((await auth.validate(token)).session?.lastSeenAt).toBe(clock.time);
    expect(count()).toBe(2);
    const plan = await admin<{ 'QUERY PLAN': string }>(
      `EXPLAIN SELECT * FROM "${schema}".latchkey_sessions WHERE id = $1`,
      [session.id],
    );
    expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toMatch(/Index Scan .*pkey/);
  });

  it('with the cache on, a repeated validation sends no query at all', async () => {
    const { store, count, reset } = await openStore({ cache: true });
    const auth = new Latchkey({ store });
    const { token } = await auth.create('ada');
    reset();
    expect((await auth.validate(token)).session).not.toBeNull();
    expect(count()).toBe(1);
    reset();
    for (let i = 0; i < 100; i++) expect((await auth.validate(token)).session).not.toBeNull();
    expect(count()).toBe(0);
    expect(store.cache?.stats().hitCount).toBe(100);
  });

  it('capped creates from several pools at once never exceed the cap', async () => {
    const stores = await Promise.all([openStore(), openStore(), openStore()]);
    const userId = 'capped';
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        stores[i % 3]?.store.createCapped(record({ userId, createdAt: Date.now() + i }), 3),
      ),
    );
    expect(await stores[0]?.store.listByUser(userId, Date.now())).toHaveLength(3);
    expect(results.filter(Boolean)).toHaveLength(3);
  });

  it('logins from several pools at once under evict-oldest never exceed the cap', async () => {
    const stores = await Promise.all([openStore(), openStore(), openStore()]);
    const userId = 'capped-evict-oldest';
    const evicted: string[] = [];
    const engines = stores.map(
      ({ store }) =>
        new Sessions({
          store,
          maxSessionsPerUser: 3,
          onEvent: (event) => {
            if (event.type === 'evicted') evicted.push(event.sessionId);
          },
        }),
    );
    await Promise.all(Array.from({ length: 30 }, (_, i) => engines[i % 3]?.create(userId)));
    expect(await stores[0]?.store.listByUser(userId, Date.now())).toHaveLength(3);
    expect(evicted).toHaveLength(27);
  });

  it('a burst of 200 attempts from two pools counts exactly to the limit', async () => {
    const [a, b] = await Promise.all([openStore(), openStore()]);
    const rule = attemptRuleOf({
      windowMs: 60_000,
      limit: 10,
      freeAttempts: 1000,
      baseDelayMs: 1,
      maxDelayMs: 1,
    });
    const now = Date.now();
    const decisions = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        (i % 2 ? a : b).store.consumeAttempt('burst', now, rule),
      ),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    expect(Math.max(...decisions.map((d) => d.count))).toBe(10);
  });

  it('an attempt waits as long as the rule’s table says, whatever its shape', async () => {
    const { store } = await openStore();
    const rule = { windowMs: 60_000, limit: 10, freeAttempts: 1, delays: [700, 30, 5000] };
    let at = Date.now();
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      expect((await store.consumeAttempt('table', at, rule)).allowed).toBe(true);
      const refused = await store.consumeAttempt('table', at, rule);
      expect(refused.allowed).toBe(false);
      waits.push(refused.retryAt - at);
      at = refused.retryAt;
    }
    expect(waits).toEqual([700, 30, 5000, 5000, 5000]);
  });

  it('parallel remember-me rotations from two pools: exactly one wins', async () => {
    const [a, b] = await Promise.all([openStore(), openStore()]);
    const token = (selector: string) => ({
      selector,
      validatorHash: 'h',
      userId: 'ada',
      createdAt: 1,
      expiresAt: Date.now() + MINUTE,
      replacedBy: null,
      replacedAt: null,
    });
    await a.store.createRemember(token('old'));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).store.rotateRemember('old', token(`new-${i}`), Date.now()),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('deleteUser takes the user’s second factors with the account, and no one else’s', async () => {
    const { store } = await openStore();
    const user = (id: string) => ({
      id,
      username: id,
      usernameKey: id,
      passwordHash: 'h',
      createdAt: 1,
      disabled: false,
    });
    await store.createUser(user('ada'));
    await store.createUser(user('bob'));
    await store.createFactor(factor({ userId: 'ada' }));
    await store.createFactor(factor({ userId: 'ada', kind: 'recovery', name: '' }));
    const kept = factor({ userId: 'bob' });
    await store.createFactor(kept);
    expect(await store.deleteUser('ada')).toBe(true);
    expect(await store.listFactors('ada')).toEqual([]);
    expect(await store.listFactors('bob')).toEqual([kept]);
    expect(await store.deleteUser('ada')).toBe(false);
  });

  it('deleteExpired deletes 2,500 dead rows in batches of 1,000 and counts them', async () => {
    const { store, count, reset } = await openStore();
    const now = Date.now();
    await admin(
      `INSERT INTO "${schema}".latchkey_sessions
       SELECT 'dead-' || i, 'user-' || (i % 50), $1::bigint, $1, $1 + 1000, $1 + 1000, $1, NULL, NULL, '{}', '{}'
       FROM generate_series(1, 2500) AS i`,
      [now - MINUTE],
    );
    const live = Array.from({ length: 20 }, () => record({ idleExpiresAt: now + MINUTE }));
    for (const r of live) await store.create(r);
    reset();
    expect(await store.deleteExpired(now)).toBe(2500);
    // Three full or partial batches, then one that finds nothing.
    expect(count()).toBe(4);
    expect(await store.deleteExpired(now)).toBe(0);
    const [left] = await admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".latchkey_sessions`,
    );
    expect(left?.n).toBe(20);
  });
});

describe('PostgreSQL validation cache', () => {
  it('a sweep on one process drops the swept sessions from the other’s cache', async () => {
    const [a, b] = await Promise.all([openStore({ cache: true }), openStore({ cache: true })]);
    const deadline = Date.now() + 10 * MINUTE;
    const doomed = record({ idleExpiresAt: deadline });
    const kept = record({ idleExpiresAt: deadline + MINUTE });
    await a.store.create(doomed);
    await a.store.create(kept);
    await b.store.get(doomed.id);
    await b.store.get(kept.id);
    expect(b.store.cache?.size()).toBe(2);
    expect(await a.store.deleteExpired(deadline)).toBe(1);
    expect(await b.store.get(doomed.id)).toBeNull();
    b.reset();
    expect((await b.store.get(kept.id))?.id).toBe(kept.id);
    expect(b.count()).toBe(0);
  });

  it('switches off when its LISTEN connection is killed, and back on once it listens again', async () => {
    const applicationName = `latchkey-test-${randomBytes(4).toString('hex')}`;
    const { store, count, reset } = await openStore({ cache: true, applicationName });
    const other = await openStore();
    const auth = new Latchkey({ store });
    const { token, session } = await auth.create('ada');
    await auth.validate(token);
    const [listener] = await admin<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [`latchkey cache ${schema}`],
    );
    expect(listener).toBeDefined();
    await admin('SELECT pg_terminate_backend($1)', [listener?.pid]);
    const noticedIn = await until(() => store.cache?.active === false);
    // While off, invalidations may be lost: every read must go to PostgreSQL.
    expect(store.cache?.size()).toBe(0);
    await other.store.delete(session.id);
    reset();
    expect((await auth.validate(token)).reason).toBe('not_found');
    expect(count()).toBeGreaterThan(0);

    const back = await auth.create('ada');
    const reconnectedIn = await until(() => store.cache?.active === true);
    console.info(
      `postgres cache: off ${noticedIn} ms after the kill, listening again ${reconnectedIn} ms later`,
    );
    await auth.validate(back.token);
    reset();
    await auth.validate(back.token);
    expect(count()).toBe(0);
    // Invalidations reach it again.
    await other.store.delete(back.session.id);
    await until(() => store.cache?.lookup(back.session.id) === null, 2000);
    expect((await auth.validate(back.token)).reason).toBe('not_found');
  });

  it('after an invalidation, concurrent reads of one session send one query between them', async () => {
    const [a, b] = await Promise.all([openStore({ cache: true }), openStore()]);
    const created = record();
    await a.store.create(created);
    await a.store.get(created.id);
    const idleExpiresAt = created.idleExpiresAt + MINUTE;
    await b.store.touch(created.id, created.lastSeenAt + 1, idleExpiresAt);
    await until(() => a.store.cache?.size() === 0, 2000);
    a.reset();
    const reads = await Promise.all(Array.from({ length: 20 }, () => a.store.get(created.id)));
    expect(reads.map((read) => read?.idleExpiresAt)).toEqual(Array(20).fill(idleExpiresAt));
    expect(a.count()).toBe(1);
  });

  it('a read an invalidation reached is shared with no one who asks after it', async () => {
    const [a, b] = await Promise.all([openStore({ cache: true, maxConnections: 1 }), openStore()]);
    const created = record();
    await a.store.create(created);
    // The pool's only connection held: the first read waits for it with its query unsent.
    const held = await a.pool.connect();
    a.reset();
    const first = a.store.get(created.id);
    await until(() => a.store.cache?.fill(created.id) !== undefined);
    const idleExpiresAt = created.idleExpiresAt + MINUTE;
    await b.store.touch(created.id, created.lastSeenAt + 1, idleExpiresAt);
    await until(() => a.store.cache?.fill(created.id) === undefined, 2000);
    const later = Array.from({ length: 10 }, () => a.store.get(created.id));
    held.release();
    const reads = await Promise.all([first, ...later]);
    expect(reads.map((read) => read?.idleExpiresAt)).toEqual(Array(11).fill(idleExpiresAt));
    // The first read, and one for the ten that came after the invalidation.
    expect(a.count()).toBe(2);
  });

  it('a store with the cache off still notifies stores that have it on', async () => {
    const [plain, cached] = await Promise.all([openStore(), openStore({ cache: true })]);
    const created = record();
    await plain.store.create(created);
    await cached.store.get(created.id);
    expect(cached.store.cache?.size()).toBe(1);
    await plain.store.delete(created.id);
    await until(() => cached.store.cache?.size() === 0, 1000);
    expect(await cached.store.get(created.id)).toBeNull();
  });
});

describe('PostgreSQL connect', () => {
  it('rejects with the reason when PostgreSQL does not answer', async () => {
    const url = new URL(POSTGRES_URL);
    url.port = '1';
    await expect(PostgresStore.connect(url.toString(), { schema })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('an idle connection killed by the server does not crash the process', async () => {
    const applicationName = `latchkey-test-${randomBytes(4).toString('hex')}`;
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', applicationName);
    const store = await PostgresStore.connect(url.toString(), { schema });
    cleanups.push(() => store.close());
    const created = record();
    await store.create(created);
    expect(await terminate(applicationName)).toBeGreaterThan(0);
    await until(() => store.pool.totalCount === 0);
    expect((await store.get(created.id))?.id).toBe(created.id);
  });
});

describe('PostgreSQL undecodable rows', () => {
  /** Writes `good` with some columns replaced by raw SQL text (JSON the store cannot read). */
  async function insertRaw(good: SessionRecord, user: string, data: string): Promise<void> {
    await admin(
      `INSERT INTO "${schema}".latchkey_sessions VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        good.id,
        good.userId,
        good.createdAt,
        good.lastSeenAt,
        good.idleExpiresAt,
        good.absoluteExpiresAt,
        good.authenticatedAt,
        good.ip,
        good.userAgent,
        user,
        data,
      ],
    );
  }

  for (const cache of [false, true]) {
    it(`read as no session, are never cached, and lists leave them out${cache ? ' (validation cache on)' : ''}`, async () => {
      const { store } = await openStore({ cache });
      const good = record({ data: { theme: 'dark' } });
      await store.create(good);
      const bad: [string, string][] = [
        ['{"name": "Ada"', '{}'],
        ['{}', 'not json'],
        ['{}', '[1, 2]'],
        ['null', '{}'],
        ['"Ada"', '{}'],
        ['{}', '42'],
      ];
      const ids: string[] = [];
      for (const [user, data] of bad) {
        const row = record();
        await insertRaw(row, user, data);
        ids.push(row.id);
      }
      for (let round = 0; round < 2; round++) {
        for (const id of ids) expect(await store.get(id)).toBeNull();
      }
      expect(store.cache?.size() ?? 0).toBe(0);
      expect(await store.get(good.id)).toEqual(good);
      expect(await store.listByUser(good.userId, good.createdAt)).toEqual([good]);
      // Deleting one is allowed, and counted as the row it is.
      expect(await store.delete(ids[0] as string)).toBe(true);
      expect(await store.deleteByUser(good.userId, good.id)).toBe(ids.length - 1);
    });
  }
});

describe('PostgreSQL options', () => {
  it('bad options are a ConfigError that names them, before any connection', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL });
    cleanups.push(() => pool.end());
    const refused: [unknown, RegExp][] = [
      [() => new PostgresStore({} as never), /pool/],
      [() => new PostgresStore(null as never), /pool/],
      [() => new PostgresStore(pool, { cache: 'yes' } as never), /cache/],
      [() => new PostgresStore(pool, { cache: { maxEntries: 0 } }), /cache\.maxEntries/],
      [() => new PostgresStore(pool, { schema: 'a-b' }), /schema/],
      [() => new PostgresStore(pool, null as never), /options/],
    ];
    for (const [open, named] of refused) {
      expect(open).toThrow(ConfigError);
      expect(open).toThrow(named);
    }
    await expect(PostgresStore.connect(42 as never)).rejects.toThrow(ConfigError);
    for (const connectTimeout of [0, 1.5, Number.NaN]) {
      await expect(PostgresStore.connect(POSTGRES_URL, { connectTimeout })).rejects.toThrow(
        /connectTimeout/,
      );
      await expect(PostgresStore.connect(POSTGRES_URL, { connectTimeout })).rejects.toThrow(
        ConfigError,
      );
    }
    await expect(migrate({} as never)).rejects.toThrow(ConfigError);
  });

  it('a URL pg cannot parse is a ConfigError; a server that refuses is not', async () => {
    await expect(
      PostgresStore.connect('postgres://a:b@host:notaport/db', { schema }),
    ).rejects.toThrow(ConfigError);
    const url = new URL(POSTGRES_URL);
    url.port = '1';
    const refused = PostgresStore.connect(url.toString(), { schema });
    await expect(refused).rejects.toThrow(/ECONNREFUSED/);
    await expect(refused).rejects.not.toBeInstanceOf(ConfigError);
  });
});
