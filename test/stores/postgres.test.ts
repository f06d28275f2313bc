import { randomBytes } from 'node:crypto';
import { ConfigError, Latchkey, type SessionRecord, Sessions } from 'latchkey';
import { migrate, PostgresStore } from 'latchkey/stores/postgres';
import { factor } from 'latchkey/testing';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { attemptRuleOf } from '../../src/core/throttle.js';
import { migrateUpTo } from '../../src/stores/postgres/migrations.js';
import { FakeClock } from '../helpers/clock.js';
import { admin, POSTGRES_URL, terminate } from '../helpers/postgres-server.js';
import { MINUTE, postgresStores, record, until } from '../helpers/postgres-stores.js';

const fixture = postgresStores();

describe('PostgreSQL migrations', () => {
  it('are versioned and idempotent', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL });
    fixture.cleanups.push(() => pool.end());
    expect(await migrate(pool, { schema: fixture.schema })).toEqual({
      applied: [1, 2],
      version: 2,
    });
    expect(await migrate(pool, { schema: fixture.schema })).toEqual({ applied: [], version: 2 });
    const rows = await admin<{ version: number; name: string }>(
      `SELECT version, name FROM "${fixture.schema}".latchkey_migrations ORDER BY version`,
    );
    expect(rows.map((row) => row.version)).toEqual([1, 2]);
    // A store opened on a migrated schema applies nothing.
    const store = new PostgresStore(pool, { schema: fixture.schema });
    expect(await store.migrations()).toEqual({ applied: [], version: 2 });
    await store.close();
  });

  it('several migrators starting at once apply each version exactly once', async () => {
    const pools = Array.from({ length: 6 }, () => new pg.Pool({ connectionString: POSTGRES_URL }));
    fixture.cleanups.push(() => Promise.all(pools.map((pool) => pool.end())));
    const reports = await Promise.all(
      pools.map((pool) => migrate(pool, { schema: fixture.schema })),
    );
    expect(reports.filter((report) => report.applied.length > 0)).toEqual([
      { applied: [1, 2], version: 2 },
    ]);
    expect(reports.every((report) => report.version === 2)).toBe(true);
  });

  it('a session stored before version 2 reads as level 1 with no methods after it', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL });
    fixture.cleanups.push(() => pool.end());
    expect(await migrateUpTo(pool, { schema: fixture.schema }, 1)).toEqual({
      applied: [1],
      version: 1,
    });
    const old = record({ data: { theme: 'dark' } });
    // The row as version 1 wrote it: its 11 columns, no aal or amr.
    await admin(
      `INSERT INTO "${fixture.schema}".latchkey_sessions (id, user_id, created_at, last_seen_at,
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
    expect(await migrate(pool, { schema: fixture.schema })).toEqual({ applied: [2], version: 2 });
    const store = new PostgresStore(pool, { schema: fixture.schema });
    fixture.cleanups.push(() => store.close());
    expect(await store.get(old.id)).toEqual({ ...old, aal: 1, amr: [] });
    expect(await store.listByUser(old.userId, old.createdAt)).toEqual([old]);
    // The new columns take what later sessions carry.
    const stepped = record({ aal: 2, amr: ['pwd', 'otp', 'mfa'] });
    await store.create(stepped);
    expect(await store.get(stepped.id)).toEqual(stepped);
  });

  it('refuses a schema name that is not a plain identifier', () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL });
    fixture.cleanups.push(() => pool.end());
    expect(() => new PostgresStore(pool, { schema: 'x"; DROP TABLE y; --' })).toThrow(/schema/);
    expect(() => new PostgresStore(pool, { schema: 'a'.repeat(49) })).toThrow(/schema/);
  });
});

describe('PostgreSQL store', () => {
  it('a validation is one indexed query; a refresh adds one write', async () => {
    const { store, count, reset } = await fixture.openStore();
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
      `EXPLAIN SELECT * FROM "${fixture.schema}".latchkey_sessions WHERE id = $1`,
      [session.id],
    );
    expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toMatch(/Index Scan .*pkey/);
  });

  it('with the cache on, a repeated validation sends no query at all', async () => {
    const { store, count, reset } = await fixture.openStore({ cache: true });
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
    const stores = await Promise.all([
      fixture.openStore(),
      fixture.openStore(),
      fixture.openStore(),
    ]);
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
    const stores = await Promise.all([
      fixture.openStore(),
      fixture.openStore(),
      fixture.openStore(),
    ]);
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
    const [a, b] = await Promise.all([fixture.openStore(), fixture.openStore()]);
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
    const { store } = await fixture.openStore();
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
    const [a, b] = await Promise.all([fixture.openStore(), fixture.openStore()]);
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
    const { store } = await fixture.openStore();
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
    const { store, count, reset } = await fixture.openStore();
    const now = Date.now();
    await admin(
      `INSERT INTO "${fixture.schema}".latchkey_sessions
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
      `SELECT count(*)::int AS n FROM "${fixture.schema}".latchkey_sessions`,
    );
    expect(left?.n).toBe(20);
  });
});

describe('PostgreSQL connect', () => {
  it('rejects with the reason when PostgreSQL does not answer', async () => {
    const url = new URL(POSTGRES_URL);
    url.port = '1';
    await expect(PostgresStore.connect(url.toString(), { schema: fixture.schema })).rejects.toThrow(
      /ECONNREFUSED/,
    );
  });

  it('an idle connection killed by the server does not crash the process', async () => {
    const applicationName = `latchkey-test-${randomBytes(4).toString('hex')}`;
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', applicationName);
    const store = await PostgresStore.connect(url.toString(), { schema: fixture.schema });
    fixture.cleanups.push(() => store.close());
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
      `INSERT INTO "${fixture.schema}".latchkey_sessions VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
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
      const { store } = await fixture.openStore({ cache });
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
    fixture.cleanups.push(() => pool.end());
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
      PostgresStore.connect('postgres://a:b@host:notaport/db', { schema: fixture.schema }),
    ).rejects.toThrow(ConfigError);
    const url = new URL(POSTGRES_URL);
    url.port = '1';
    const refused = PostgresStore.connect(url.toString(), { schema: fixture.schema });
    await expect(refused).rejects.toThrow(/ECONNREFUSED/);
    await expect(refused).rejects.not.toBeInstanceOf(ConfigError);
  });
});
