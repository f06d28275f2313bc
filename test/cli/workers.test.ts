import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addUser, runCli, type ServeProcess, tempDir, useServe } from '../helpers/cli.js';
import { POSTGRES_URL, postgresUnavailable } from '../helpers/postgres-server.js';
import { PrivateRedis, redisServerUnavailable } from '../helpers/redis-server.js';
import {
  addStoreUser,
  apiLogin,
  apiLogout,
  apiMe,
  call,
  sessionCookie,
  skipOrFail,
} from '../multi/http.js';

/**
 * `latchkey serve --workers N`: real cluster processes on one port, on SQLite, Redis and
 * PostgreSQL. Which worker answered is read from the access log (each worker's lines carry its
 * `worker` id); requests go on fresh connections, which the primary hands out round-robin.
 */

const PASSWORD = 'correct horse battery staple';
const temp = tempDir();
afterAll(() => temp.remove());
const startServe = useServe();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface LogLine {
  readonly msg?: string;
  readonly worker?: number;
  readonly pid?: number;
  readonly pids?: number[];
  readonly sweeps?: boolean;
  readonly route?: string;
  readonly method?: string;
  readonly status?: number;
}

function logLines(server: ServeProcess): LogLine[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Resolves once `test` holds for the log (checked as each chunk of output arrives). */
function untilLog<T>(
  server: ServeProcess,
  test: (lines: LogLine[]) => T | undefined,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = test(logLines(server));
      if (found === undefined) return;
      done();
      resolve(found);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${what} in: ${server.output()}`));
    }, 20_000);
    const done = () => {
      clearTimeout(timer);
      server.child.stdout?.off('data', check);
      server.child.stderr?.off('data', check);
    };
    server.child.stdout?.on('data', check);
    server.child.stderr?.on('data', check);
    check();
  });
}

/** The primary's start-up line: once every worker listens. */
function started(server: ServeProcess): Promise<LogLine> {
  return untilLog(
    server,
    (lines) => lines.find((line) => /with \d+ workers/.test(line.msg ?? '')),
    'start-up line',
  );
}

function exited(server: ServeProcess): Promise<number | null> {
  const { child } = server;
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A metric's value in a Prometheus text answer. */
function metric(text: string, line: string): number {
  const found = text.split('\n').find((each) => each.startsWith(`${line} `));
  if (found === undefined) throw new Error(`no ${line} in:\n${text}`);
  return Number(found.slice(line.length + 1));
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

/** Stores by name: the serve arguments for one holding user "ada", or why it cannot run. */
const STORES: Record<string, () => Promise<string[]>> = {
  sqlite: async () => {
    const db = `${temp.dir}/${randomBytes(4).toString('hex')}.db`;
    await addUser(db, 'ada', PASSWORD);
    return ['--db', db];
  },
  // The store URL names no key prefix, so Redis is a redis-server of this test's own. Users stay
  // in SQLite: sessions (and so revocation) are what the workers share through Redis.
  redis: async () => {
    const redis = await PrivateRedis.start(['--appendonly', 'no']);
    cleanups.push(() => redis.destroy());
    const db = `${temp.dir}/${randomBytes(4).toString('hex')}.db`;
    await addUser(db, 'ada', PASSWORD);
    return ['--store', redis.url, '--users', 'sqlite', '--db', db];
  },
  // Nor a schema: a database of this test's own.
  postgres: async () => {
    const name = `latchkey_workers_${randomBytes(6).toString('hex')}`;
    await postgresAdmin((client) => client.query(`CREATE DATABASE ${name}`));
    cleanups.push(async () => {
      await postgresAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    });
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${name}`;
    await addStoreUser(url.toString(), 'ada', PASSWORD);
    return ['--store', url.toString()];
  },
};

const UNAVAILABLE: Record<string, () => Promise<string | null>> = {
  sqlite: async () => null,
  redis: redisServerUnavailable,
  postgres: () => postgresUnavailable(),
};

const CALLS = 16;

describe('latchkey serve --workers', () => {
  for (const kind of Object.keys(STORES)) {
    it(`${kind}: a logout through one worker is refused by every worker; /metrics sums them`, {
      timeout: 60_000,
    }, async (context) => {
      skipOrFail(await (UNAVAILABLE[kind] as () => Promise<string | null>)(), context);
      const args = await (STORES[kind] as () => Promise<string[]>)();
      const server = await startServe(['--workers', '2', '--metrics', ...args]);
      const start = await started(server);
      expect(start.pids).toHaveLength(2);
      // Exactly one worker sweeps.
      const listening = logLines(server).filter((line) => line.msg?.includes('listening on http'));
      expect(listening.filter((line) => line.sweeps === true)).toHaveLength(1);
      expect(listening.filter((line) => line.sweeps === false)).toHaveLength(1);

      const login = await apiLogin(server.url, 'ada', PASSWORD);
      expect(login.status).toBe(200);
      const cookie = sessionCookie(login);
      for (let i = 0; i < CALLS; i += 1) expect((await apiMe(server.url, cookie)).status).toBe(200);
      const out = await apiLogout(server.url, cookie);
      expect(out.status).toBeLessThan(300);
      for (let i = 0; i < CALLS; i += 1) expect((await apiMe(server.url, cookie)).status).toBe(401);

      // Both workers answered after the logout, one of them not the worker that logged out.
      const requests = await untilLog(
        server,
        (lines) => {
          const me = lines.filter((line) => line.msg === 'request' && line.route === '/api/me');
          return me.length >= 2 * CALLS ? lines : undefined;
        },
        'request lines',
      );
      const logout = requests.find(
        (line) => line.msg === 'request' && line.route === '/api/logout',
      );
      const after = requests
        .filter((line) => line.msg === 'request' && line.route === '/api/me' && line.status === 401)
        .map((line) => line.worker);
      expect(logout?.status).toBeLessThan(300);
      expect(new Set(after).size).toBe(2);

      // Whichever worker answers /metrics, it shows every worker's counts summed.
      for (let i = 0; i < 4; i += 1) {
        const answer = await call(`${server.url}/metrics`);
        expect(answer.status).toBe(200);
        expect(metric(answer.body, 'latchkey_logins_total{result="success"}')).toBe(1);
        expect(
          metric(answer.body, 'latchkey_validations_total{result="valid"}'),
        ).toBeGreaterThanOrEqual(CALLS);
        expect(metric(answer.body, 'latchkey_validations_total{result="revoked"}')).toBe(CALLS);
      }
      const metricsLines = await untilLog(
        server,
        (lines) => {
          const found = lines.filter((line) => line.msg === 'request' && line.route === '/metrics');
          return found.length >= 4 ? found : undefined;
        },
        '/metrics request lines',
      );
      expect(new Set(metricsLines.map((line) => line.worker)).size).toBe(2);

      // SIGTERM to the primary: every worker closes its stores, and the primary exits 0.
      expect(await server.stop()).toBe(0);
      // The output may still be in the pipe when the primary has exited.
      const stopped = await untilLog(
        server,
        (lines) => {
          const found = lines.filter((line) => line.msg === 'latchkey stopped');
          return found.length >= 3 ? found : undefined;
        },
        'stop lines',
      );
      expect(stopped).toHaveLength(3);
      for (const pid of start.pids ?? []) expect(alive(pid)).toBe(false);
    });
  }

  it('restarts a worker killed with SIGKILL; its replacement takes over the sweeps', {
    timeout: 60_000,
  }, async () => {
    const args = await (STORES.sqlite as () => Promise<string[]>)();
    const server = await startServe(['--workers', '2', ...args]);
    const pids = (await started(server)).pids as number[];
    const sweeper = logLines(server).find((line) => line.sweeps === true)?.pid as number;
    expect(pids).toContain(sweeper);
    process.kill(sweeper, 'SIGKILL');
    const restarted = await untilLog(
      server,
      (lines) => lines.find((line) => line.msg === 'worker restarted'),
      'restart',
    );
    expect(restarted.pid).not.toBe(sweeper);
    expect(alive(restarted.pid as number)).toBe(true);
    const sweeping = logLines(server).filter(
      (line) => line.msg?.includes('listening on http') && line.sweeps === true,
    );
    expect(sweeping.map((line) => line.pid)).toEqual([sweeper, restarted.pid]);
    expect(server.output()).toMatch(/worker exited \(signal SIGKILL\); restarting it in \d+ ms/);
    // The replacement serves: a login, then every fresh connection sees the session.
    const cookie = sessionCookie(await apiLogin(server.url, 'ada', PASSWORD));
    for (let i = 0; i < 6; i += 1) expect((await apiMe(server.url, cookie)).status).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it('gives up with exit 1 when workers keep dying', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    cleanups.push(async () => dir.remove());
    await addUser(dir.db, 'ada', PASSWORD);
    const server = await startServe(['--workers', '2', '--db', dir.db]);
    const pids = (await started(server)).pids as number[];
    // Every replacement now fails to open its store, so the deaths come in quick succession.
    rmSync(dir.dir, { recursive: true, force: true });
    process.kill(pids[0] as number, 'SIGKILL');
    expect(await exited(server)).toBe(1);
    await untilLog(
      server,
      (lines) =>
        lines.find((line) =>
          /5 workers in a row died within 10 s of starting, stopping/.test(line.msg ?? ''),
        ),
      'give-up line',
    );
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('refuses a memory store with more than one worker (exit 2)', async () => {
    for (const store of [
      ['--store', 'memory'],
      ['--users', 'memory'],
    ]) {
      const result = await runCli(['serve', '--port', '0', '--workers', '2', ...store]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(
        /workers \(--workers 2\): a memory store lives inside one process/,
      );
    }
    const auto = await runCli(['serve', '--workers', 'none']);
    expect(auto.code).toBe(2);
    expect(auto.stderr).toMatch(/--workers: "none" is not a positive whole number or auto/);
  });

  it('config check shows the setting and where it came from', async () => {
    const result = await runCli(['config', 'check', '--json'], {
      env: { LATCHKEY_WORKERS: '3' },
    });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).workers).toBe(3);
    const table = await runCli(['config', 'check', '--workers', 'auto']);
    expect(table.stdout).toMatch(/^workers\s+auto \(\d+\)\s+--workers$/m);
  });
});
