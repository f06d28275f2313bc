import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, Latchkey } from '../../src/index.js';
import { readServeSettings } from '../../src/server/settings.js';
import {
  openStores,
  planStores,
  SCHEMES,
  type Scheme,
  type StoreChoice,
} from '../../src/server/stores.js';
import { sweepOnce } from '../../src/server/sweep.js';
import type { RedisStore } from '../../src/stores/redis/index.js';
import { REDIS_URL, redisUnavailable } from '../helpers/redis-server.js';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, 'latchkey.db');
const choice = (store: string | null, users: string | null = null): StoreChoice => ({
  db,
  store,
  users,
  cache: false,
});

/** The shipped table plus a store marked not durable, as memcached will be. */
const WITH_CACHE_STORE: Readonly<Record<string, Scheme>> = {
  ...SCHEMES,
  memcached: { ...(SCHEMES.memory as Scheme), durable: false },
};

describe('where sessions and users live', () => {
  it('follows the rule: --users, else a durable --store, else the SQLite file', () => {
    const sqlite = { url: null, db };
    expect(planStores(choice(null))).toMatchObject({ users: sqlite, shared: true });
    expect(planStores(choice('redis://h:6379'))).toMatchObject({
      users: { url: 'redis://h:6379' },
      usersReason: 'same as store',
      shared: true,
    });
    expect(planStores(choice('postgres://h/db'))).toMatchObject({ shared: true });
    expect(planStores(choice('memory'))).toMatchObject({
      sessions: { url: 'memory' },
      users: sqlite,
      usersReason: 'sqlite default',
      shared: false,
    });
    expect(planStores(choice('redis://h', 'sqlite'))).toMatchObject({
      users: sqlite,
      shared: false,
    });
    expect(planStores(choice('redis://h', 'redis://h'))).toMatchObject({ shared: true });
    expect(planStores(choice('redis://h', 'postgres://h/db'))).toMatchObject({
      usersReason: 'given',
      shared: false,
    });
    // A store that is not durable gets the SQLite file for users, as the default.
    expect(planStores(choice('memcached://h:11211'), WITH_CACHE_STORE)).toMatchObject({
      users: sqlite,
    });
  });

  it('refuses a users store that is not durable, unless it is memory named explicitly', () => {
    expect(() => planStores(choice('redis://h', 'memcached://h:11211'), WITH_CACHE_STORE)).toThrow(
      ConfigError,
    );
    expect(() => planStores(choice('redis://h', 'memcached://h:11211'), WITH_CACHE_STORE)).toThrow(
      /--users: memcached:\/\/h:11211 is not durable/,
    );
    expect(planStores(choice('memory', 'memory'))).toMatchObject({ shared: true });
    expect(planStores(choice(null, 'memory'))).toMatchObject({ users: { url: 'memory' } });
  });

  it('reads --users, LATCHKEY_USERS and the users key from the one settings table', () => {
    expect(readServeSettings(['--users', 'postgres://h/db'], {})?.users).toBe('postgres://h/db');
    expect(readServeSettings([], { LATCHKEY_USERS: 'memory' })?.users).toBe('memory');
    expect(() => readServeSettings(['--users', 'mysql://x'], {})).toThrow(/--users: "mysql/);
    expect(() => readServeSettings(['--store', 'memory', '--cache'], {})).toThrow(/cache/);
  });

  it('reads the cache bound from --cache-max-staleness or LATCHKEY_CACHE_MAX_STALENESS (default 1 s)', () => {
    const store = ['--store', 'redis://h', '--cache'];
    expect(readServeSettings(store, {})?.cacheMaxStaleness).toBe(1000);
    expect(
      readServeSettings([...store, '--cache-max-staleness', '250ms'], {})?.cacheMaxStaleness,
    ).toBe(250);
    expect(
      readServeSettings(store, { LATCHKEY_CACHE_MAX_STALENESS: '2s' })?.cacheMaxStaleness,
    ).toBe(2000);
    expect(() => readServeSettings([...store, '--cache-max-staleness', '0'], {})).toThrow(
      /--cache-max-staleness.*must be at least 20 ms/,
    );
    expect(() => readServeSettings([...store, '--cache-max-staleness', '5ms'], {})).toThrow(
      /--cache-max-staleness/,
    );
  });
});

describe('the cache bound reaches the store', () => {
  it('opens the Redis cache with --cache-max-staleness', async (context) => {
    const reason = await redisUnavailable();
    if (reason) {
      if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(reason);
      context.skip();
    }
    const stores = await openStores({ ...choice(REDIS_URL), cache: true, cacheMaxStaleness: 300 });
    expect((stores.sessions as unknown as RedisStore).cache?.maxStaleness).toBe(300);
    await stores.close();
  });
});

describe('opening the stores', () => {
  it('the same URL for both roles opens one store, closed once', async (context) => {
    const reason = await redisUnavailable();
    if (reason) {
      if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(reason);
      context.skip();
    }
    const stores = await openStores(choice(REDIS_URL, REDIS_URL));
    expect(stores.all).toHaveLength(1);
    expect(stores.users).toBe(stores.sessions);
    let closes = 0;
    const close = stores.sessions.close.bind(stores.sessions);
    stores.sessions.close = async () => {
      closes += 1;
      await close();
    };
    await stores.close();
    expect(closes).toBe(1);
  });

  it('different stores open apart, and both close', async () => {
    const stores = await openStores(choice('memory'));
    expect(stores.all).toHaveLength(2);
    expect(stores.users).not.toBe(stores.sessions);
    await stores.users.createUser({
      id: 'u1',
      username: 'ada',
      usernameKey: 'ada',
      passwordHash: 'x',
      disabled: false,
      createdAt: Date.now(),
    });
    await stores.close();
    // The users went to the SQLite file, which outlives the process's memory store.
    const again = await openStores(choice('memory'));
    expect(await again.users.findUserByKey('ada')).toMatchObject({ id: 'u1' });
    expect(await again.sessions.listByUser('u1', Date.now())).toEqual([]);
    await again.close();
  });
});

describe('sweeping split stores', () => {
  it('sweeps remember-me tokens in the users store, windows and sessions in the sessions store', async () => {
    const stores = await openStores({ ...choice('memory'), db: join(dir, 'sweep.db') });
    try {
      const now = Date.now();
      const token = (selector: string, expiresAt: number) => ({
        selector,
        validatorHash: 'h',
        userId: 'u1',
        createdAt: now - 10_000,
        expiresAt,
        replacedBy: null,
        replacedAt: null,
      });
      await stores.users.createRemember(token('old', now - 1));
      await stores.users.createRemember(token('live', now + 60_000));
      const rule = { windowMs: 1, limit: 10, freeAttempts: 10, delays: [0] };
      await stores.sessions.consumeAttempt('ip:127.0.0.1', now - 10, rule);
      // A session made an hour ago, so its 30-minute idle timeout has passed by now.
      let clock = now - 3_600_000;
      const latchkey = new Latchkey({
        store: stores.sessions,
        users: stores.users,
        remember: { store: stores.users },
        clock: () => clock,
      });
      await latchkey.create('u1');
      clock = Date.now();
      expect(await sweepOnce(latchkey, stores)).toEqual({ remember: 1, attempts: 1, sessions: 1 });
      expect(await stores.users.findRemember('live')).not.toBeNull();
      expect(await stores.users.findRemember('old')).toBeNull();
    } finally {
      await stores.close();
    }
  });
});
