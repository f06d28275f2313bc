import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addUser, runCli, tempDir, useServe } from '../helpers/cli.js';
import { POSTGRES_URL, postgresUnavailable } from '../helpers/postgres-server.js';
import { PrivateRedis, redisServerUnavailable } from '../helpers/redis-server.js';
import { apiLogin, apiLogout, apiMe, call, sessionCookie, skipOrFail } from '../multi/http.js';

/**
 * Sessions in one store, users in another (`--store` and `--users`), as Django keeps sessions in
 * a cache and users in a database: real `latchkey serve` processes, real Redis and PostgreSQL.
 */

const PASSWORD = 'correct horse battery staple';
const temp = tempDir();
afterAll(() => temp.remove());
const startServe = useServe();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A redis-server of this test's own (the store's key prefix is not a flag). */
async function privateRedis(): Promise<PrivateRedis> {
  const redis = await PrivateRedis.start(['--appendonly', 'no']);
  cleanups.push(() => redis.destroy());
  return redis;
}

async function postgresAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A database of this test's own, dropped after it; gives its URL. */
async function privateDatabase(): Promise<string> {
  const name = `latchkey_split_${randomBytes(6).toString('hex')}`;
  await postgresAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  cleanups.push(async () => {
    await postgresAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function queryOne(url: string, text: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(text);
    return Number(rows[0]?.n);
  } finally {
    await client.end();
  }
}

/** Session keys (`latchkey:s:<id>`) and user keys (`latchkey:{users}:…`) in a Redis. */
async function redisKeys(redis: PrivateRedis): Promise<{ sessions: number; users: number }> {
  const keys = (await redis.cli('--scan')).split('\n').filter(Boolean);
  return {
    sessions: keys.filter((key) => key.startsWith('latchkey:s:')).length,
    users: keys.filter((key) => key.includes('{users}')).length,
  };
}

async function cli(args: string[], input?: string): Promise<string> {
  const result = await runCli(args, input === undefined ? {} : { input });
  expect(result.code, `latchkey ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

describe('sessions and users in separate stores', () => {
  it('sessions in Redis, users in PostgreSQL: login, me, logout, and the CLI reaches both', {
    timeout: 60_000,
  }, async (context) => {
    skipOrFail((await redisServerUnavailable()) ?? (await postgresUnavailable()), context);
    const redis = await privateRedis();
    const users = await privateDatabase();
    const stores = ['--store', redis.url, '--users', users, '--db', temp.db];

    // `user …` writes to the users store: PostgreSQL, not Redis nor the SQLite file.
    await cli(['user', 'add', 'ada', '--password-stdin', ...stores], `${PASSWORD}\n`);
    expect(await queryOne(users, 'SELECT count(*) AS n FROM latchkey.latchkey_users')).toBe(1);
    expect((await redisKeys(redis)).users).toBe(0);
    expect(await cli(['user', 'list', '--json', '--db', temp.db])).toBe('');

    const server = await startServe(stores);
    expect(server.output()).toMatch(
      /listening on \S+ \(store redis:\/\/127\.0\.0\.1:\d+, users postgres:\/\/\S+,/,
    );
    expect((await call(`${server.url}/readyz`)).status).toBe(200);

    // Login-attempt counters live with the sessions, in Redis.
    expect((await apiLogin(server.url, 'ada', 'not the password')).status).toBe(401);
    const scanned = await redis.cli('--scan');
    expect(scanned).toContain('{throttle}');
    expect(await queryOne(users, 'SELECT count(*) AS n FROM latchkey.latchkey_attempts')).toBe(0);

    const login = await apiLogin(server.url, 'ada', PASSWORD);
    expect(login.status, login.body).toBe(200);
    const cookie = sessionCookie(login);
    const me = await apiMe(server.url, cookie);
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body).user.username).toBe('ada');
    // The session lives in Redis; PostgreSQL holds none.
    expect((await redisKeys(redis)).sessions).toBe(1);
    expect(await queryOne(users, 'SELECT count(*) AS n FROM latchkey.latchkey_sessions')).toBe(0);

    expect((await apiLogout(server.url, cookie)).status).toBe(204);
    expect((await apiMe(server.url, cookie)).status).toBe(401);

    // `sessions …` reads the sessions store (and names its users from the users store).
    const again = sessionCookie(await apiLogin(server.url, 'ada', PASSWORD));
    expect(await cli(['sessions', 'list', ...stores])).toMatch(/^\S+\s+ada\s/m);
    // `user disable` from the CLI: the account (PostgreSQL) and the session (Redis) end, and the
    // running server refuses both at its next request.
    await cli(['user', 'disable', 'ada', ...stores]);
    expect((await apiMe(server.url, again)).status).toBe(401);
    expect((await apiLogin(server.url, 'ada', PASSWORD)).status).toBe(401);
    expect((await redisKeys(redis)).sessions).toBe(0);

    // `sweep` sweeps both stores (PostgreSQL under its lock).
    expect((await cli(['sweep', ...stores])).trim()).toMatch(/^\d+$/);
    expect(await cli(['migrate', ...stores])).toMatch(/schema up to date/);
    expect(await server.stop()).toBe(0);
  });

  it('sessions in Redis, users in the SQLite file (--users sqlite) that plain CLI commands use', {
    timeout: 30_000,
  }, async (context) => {
    skipOrFail(await redisServerUnavailable(), context);
    const redis = await privateRedis();
    const { db, remove } = tempDir();
    cleanups.push(async () => remove());
    // The default CLI invocation: the SQLite file, no store flags.
    await addUser(db, 'grace', PASSWORD);
    const server = await startServe(['--store', redis.url, '--users', 'sqlite', '--db', db]);
    expect(server.output()).toContain(`users ${db}`);
    const cookie = sessionCookie(await apiLogin(server.url, 'grace', PASSWORD));
    expect((await apiMe(server.url, cookie)).status).toBe(200);
    expect(await redisKeys(redis)).toEqual({ sessions: 1, users: 0 });
    // The user CLI on the SQLite file alone reaches the server; the session ends through --store.
    await cli(['user', 'disable', 'grace', '--store', redis.url, '--users', 'sqlite', '--db', db]);
    expect((await apiMe(server.url, cookie)).status).toBe(401);
    expect(await cli(['user', 'list', '--db', db])).toMatch(/grace\s.*disabled/);
  });

  it('without --users a durable --store keeps everything (Redis, as before)', {
    timeout: 30_000,
  }, async (context) => {
    skipOrFail(await redisServerUnavailable(), context);
    const redis = await privateRedis();
    await cli(
      ['user', 'add', 'ada', '--password-stdin', '--store', redis.url, '--db', temp.db],
      `${PASSWORD}\n`,
    );
    expect((await redisKeys(redis)).users).toBeGreaterThan(0);
    const server = await startServe(['--store', redis.url, '--db', temp.db]);
    expect(server.output()).not.toMatch(/, users /);
    expect((await apiLogin(server.url, 'ada', PASSWORD)).status).toBe(200);
  });

  it('/readyz answers 503 while the users store is down, though the sessions store answers', {
    timeout: 30_000,
  }, async (context) => {
    skipOrFail(await redisServerUnavailable(), context);
    const redis = await privateRedis();
    const { db, remove } = tempDir();
    cleanups.push(async () => remove());
    const server = await startServe(['--users', redis.url, '--db', db]);
    expect((await call(`${server.url}/readyz`)).status).toBe(200);
    await redis.stop();
    expect((await call(`${server.url}/readyz`)).status).toBe(503);
    await redis.resume();
    for (let i = 0; i < 100; i++) {
      if ((await call(`${server.url}/readyz`)).status === 200) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('/readyz never answered 200 again');
  });
});

describe('the users store must be durable', () => {
  it('--store memory without --users keeps users in the SQLite file', async () => {
    const { db, remove } = tempDir();
    cleanups.push(async () => remove());
    await addUser(db, 'ada', PASSWORD);
    const server = await startServe(['--store', 'memory', '--db', db]);
    expect(server.output()).toContain(`(store memory, users ${db},`);
    const cookie = sessionCookie(await apiLogin(server.url, 'ada', PASSWORD));
    expect((await apiMe(server.url, cookie)).status).toBe(200);
    const checked = await runCli(['config', 'check', '--store', 'memory', '--db', db]);
    expect(checked.stdout).toMatch(
      new RegExp(
        `^users\\s+users, remember-me tokens\\s+${db}\\s+--db \\(SQLite: no --users, and the --store is not durable\\)$`,
        'm',
      ),
    );
  });

  it('an explicit --users memory starts (for demos), with a warning, and holds no SQLite user', async () => {
    const { db, remove } = tempDir();
    cleanups.push(async () => remove());
    await addUser(db, 'ada', PASSWORD);
    const server = await startServe(['--store', 'memory', '--users', 'memory', '--db', db]);
    expect(server.output()).toContain('users and remember-me tokens live in memory');
    // One memory store for both roles: no ", users …" in the start-up line.
    expect(server.output()).toContain('(store memory, sign-up');
    expect((await apiLogin(server.url, 'ada', PASSWORD)).status).toBe(401);
  });

  it('a --users that is not a store is refused with exit 2 and one line', async () => {
    const result = await runCli(['serve', '--users', 'mysql://x', '--port', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/--users: "mysql:\/\/x" is not a redis:\/\//);
  });
});

describe('config check shows both stores', () => {
  it('each with its URL redacted and where it came from', async () => {
    const result = await runCli(
      ['config', 'check', '--store', 'redis://:hunter2@cache.internal:6379/1'],
      { env: { LATCHKEY_USERS: 'postgres://app:s3cr3t@db.internal/auth' } },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^sessions\s+sessions, login-attempt counters\s+redis:\/\/:\*\*\*@cache\.internal:6379\/1\s+--store$/m,
    );
    expect(result.stdout).toMatch(
      /^users\s+users, remember-me tokens\s+postgres:\/\/app:\*\*\*@db\.internal\/auth\s+LATCHKEY_USERS$/m,
    );
    expect(result.stdout).toMatch(
      /^users\s+postgres:\/\/app:\*\*\*@db\.internal\/auth\s+LATCHKEY_USERS$/m,
    );
    for (const secret of ['hunter2', 's3cr3t']) expect(result.stdout).not.toContain(secret);

    const json = await runCli(['config', 'check', '--json', '--store', 'postgres://u:pw@h/db']);
    expect(JSON.parse(json.stdout).stores).toEqual({
      sessions: { at: 'postgres://u:***@h/db', from: '--store' },
      users: {
        at: 'postgres://u:***@h/db',
        from: 'same store as sessions (no --users, and the store is durable)',
      },
      shared: true,
    });
  });
});
