import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivateRedis, redisServerUnavailable } from '../helpers/redis-server.js';
import {
  type Answer,
  addStoreUser,
  apiLogin,
  apiLogout,
  apiMe,
  Servers,
  sessionCookie,
  skipOrFail,
} from './http.js';

/**
 * Three `latchkey serve` processes, each with its validation cache on, share one store. A session
 * made on A is valid on B and C; a logout on C is seen by A and B at their very next request,
 * 100 times in a row. A stale cached copy anywhere would show up as a 200 after the logout.
 */

const PASSWORD = 'correct horse battery staple';
const ROUNDS = 100;
const POSTGRES_URL =
  process.env.LATCHKEY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Backend {
  readonly name: string;
  /** Null when the service can be used, else why not. */
  unavailable(): Promise<string | null>;
  /** Creates an isolated, empty store and gives its `--store` URL. */
  open(): Promise<string>;
  /**
   * Checks that every server keeps a validation cache and that `probe` (repeated validations of
   * one live session on one server, already validated there once; gives how many) is served from
   * it.
   */
  caching(servers: number, probe: () => Promise<number>): Promise<void>;
  /** Drops whatever `open` created. */
  close(): Promise<void>;
}

function redisBackend(): Backend {
  let server: PrivateRedis | null = null;
  return {
    name: 'Redis',
    unavailable: redisServerUnavailable,
    async open() {
      // A private server: the store's key prefix is not a flag, so this is what isolates the run.
      server = await PrivateRedis.start(['--appendonly', 'no']);
      return server.url;
    },
    async caching(servers, probe) {
      const redis = server as PrivateRedis;
      // RESP3 client tracking (flag `t`) is what lets Redis invalidate each server's copies.
      const clients = await redis.cli('client', 'list');
      const tracking = clients.split('\n').filter((line) => /(^| )flags=\S*t/.test(line));
      expect(tracking.length).toBeGreaterThanOrEqual(servers);
      // And the copies are used: repeated validations on one server barely reach Redis.
      const before = await sessionReads(redis);
      const requests = await probe();
      const reads = (await sessionReads(redis)) - before;
      console.info(
        `redis: ${tracking.length} tracking connections; ${requests} validations on one server cost ${reads} HGETALL`,
      );
      expect(reads).toBeLessThan(requests / 10);
    },
    async close() {
      await server?.destroy();
      server = null;
    },
  };
}

/** HGETALL calls the server has run so far (a session read that missed the cache is one). */
async function sessionReads(redis: PrivateRedis): Promise<number> {
  const stats = await redis.cli('info', 'commandstats');
  return Number(/cmdstat_hgetall:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** A database of its own per run, created here and dropped (with its connections) after. */
function postgresBackend(): Backend {
  let database: string | null = null;
  const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'PostgreSQL',
    async unavailable() {
      try {
        await admin((client) => client.query('SELECT 1'));
        return null;
      } catch (error) {
        return `no PostgreSQL at ${POSTGRES_URL} (${error instanceof Error ? error.message : String(error)})`;
      }
    },
    async open() {
      database = `latchkey_multi_${randomBytes(6).toString('hex')}`;
      await admin((client) => client.query(`CREATE DATABASE ${database}`));
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${database}`;
      return url.toString();
    },
    async caching(servers, probe) {
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${database}`;
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        // Each cache listens on a connection of its own (named after the schema it caches).
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE application_name = 'latchkey cache latchkey' AND datname = current_database()`,
        );
        const listeners = rows[0]?.n ?? 0;
        expect(listeners).toBeGreaterThanOrEqual(servers);
        // And the copies are used: with the sessions table locked, any read of it would wait,
        // so validations that still answer at once were served from the cache.
        await client.query('BEGIN');
        await client.query('LOCK TABLE latchkey.latchkey_sessions IN ACCESS EXCLUSIVE MODE');
        const started = Date.now();
        let timer: NodeJS.Timeout | undefined;
        const requests = await Promise.race([
          probe(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error('validations waited for the locked sessions table: no cache')),
              10_000,
            );
          }),
        ]).finally(() => clearTimeout(timer));
        console.info(
          `postgres: ${listeners} cache listeners; ${requests} validations on one server answered in ${Date.now() - started} ms with the sessions table locked`,
        );
      } finally {
        await client.query('ROLLBACK').catch(() => {});
        await client.end();
      }
    },
    async close() {
      if (!database) return;
      const name = database;
      database = null;
      await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

const servers = new Servers();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await servers.stopAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function expectStatus(answer: Answer, status: number, what: string): void {
  expect(answer.status, `${what}: ${answer.body}`).toBe(status);
}

describe('many latchkey servers, one store, validation cache on', () => {
  for (const backend of [redisBackend(), postgresBackend()]) {
    it(`${backend.name}: login on A, valid on B and C, logout on C is seen by A and B at once (${ROUNDS} rounds)`, {
      timeout: 240_000,
    }, async (context) => {
      skipOrFail(await backend.unavailable(), context);
      cleanups.push(() => backend.close());
      const store = await backend.open();
      await addStoreUser(store, 'ada', PASSWORD);
      const started = await Promise.all(
        [0, 1, 2].map(() => servers.start(['--store', store, '--cache'])),
      );
      const [a, b, c] = started.map((server) => server.url) as [string, string, string];
      expect(new Set([a, b, c]).size).toBe(3);
      for (const server of started) expect(server.output()).toContain('with cache');

      const begun = Date.now();
      for (let i = 0; i < ROUNDS; i++) {
        const round = `round ${i}`;
        // Each round logs in from its own loopback address: 100 clients, not one hammering client.
        const login = await apiLogin(a, 'ada', PASSWORD, `127.0.1.${i + 1}`);
        expectStatus(login, 200, `${round}: login on A`);
        const cookie = sessionCookie(login);

        const ids = new Set<string>();
        // B twice (the second from its cache), then C and A: every process now holds a copy.
        for (const [server, label] of [
          [b, 'B'],
          [b, 'B again'],
          [c, 'C'],
          [a, 'A'],
        ] as const) {
          const me = await apiMe(server, cookie);
          expectStatus(me, 200, `${round}: /api/me on ${label}`);
          ids.add((JSON.parse(me.body) as { session: { id: string } }).session.id);
        }
        expect(ids.size, round).toBe(1);

        expectStatus(await apiLogout(c, cookie), 204, `${round}: logout on C`);
        expectStatus(await apiMe(a, cookie), 401, `${round}: /api/me on A after the logout`);
        expectStatus(await apiMe(b, cookie), 401, `${round}: /api/me on B after the logout`);
      }
      const elapsed = Date.now() - begun;
      console.info(
        `${backend.name}: ${ROUNDS} rounds (login, 4 × me, logout, 2 × me) over 3 servers in ${elapsed} ms (${(elapsed / ROUNDS).toFixed(1)} ms/round)`,
      );
      const cookie = sessionCookie(await apiLogin(b, 'ada', PASSWORD, '127.0.2.1'));
      expectStatus(await apiMe(b, cookie), 200, 'the probe session on B');
      await backend.caching(3, async () => {
        for (let i = 0; i < 50; i++) expectStatus(await apiMe(b, cookie), 200, `probe ${i}`);
        return 50;
      });
    });
  }
});
