import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addUser, runCli, tempDir, useServe } from '../helpers/cli.js';
import { memcachedUnavailable, PrivateMemcached, rawRequest } from '../helpers/memcached-server.js';
import {
  type Answer,
  apiLogin,
  apiLogout,
  apiMe,
  call,
  sessionCookie,
  skipOrFail,
} from '../multi/http.js';

/**
 * `latchkey serve --store memcached://…`: sessions and throttle counters in memcached, users in
 * the SQLite file (memcached is not durable), real processes on a private memcached.
 */

const PASSWORD = 'correct horse battery staple';
const ROUNDS = 100;
const temp = tempDir();
afterAll(() => temp.remove());
const startServe = useServe();

const running: PrivateMemcached[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()));
});

async function privateMemcached(
  context: { skip(): void },
  args: string[] = ['-M'],
): Promise<PrivateMemcached> {
  skipOrFail(await memcachedUnavailable(), context);
  const server = await PrivateMemcached.start(args);
  running.push(server);
  return server;
}

function expectStatus(answer: Answer, status: number, what: string): void {
  expect(answer.status, `${what}: ${answer.body}`).toBe(status);
}

describe('latchkey serve on memcached', () => {
  it(`three servers on one memcached: a logout on one is refused on the others at the next request (${ROUNDS} rounds)`, {
    timeout: 240_000,
  }, async (context) => {
    const memcached = await privateMemcached(context);
    const { db, remove } = tempDir();
    try {
      await addUser(db, 'ada', PASSWORD);
      const store = `memcached://${memcached.address}`;
      const started = await Promise.all(
        [0, 1, 2].map(() => startServe(['--store', store, '--db', db])),
      );
      const [a, b, c] = started.map((server) => server.url) as [string, string, string];
      for (let i = 0; i < ROUNDS; i++) {
        const round = `round ${i}`;
        const login = await apiLogin(a, 'ada', PASSWORD, `127.0.1.${i + 1}`);
        expectStatus(login, 200, `${round}: login on A`);
        const cookie = sessionCookie(login);
        for (const [server, label] of [
          [b, 'B'],
          [c, 'C'],
          [a, 'A'],
        ] as const) {
          expectStatus(await apiMe(server, cookie), 200, `${round}: /api/me on ${label}`);
        }
        expectStatus(await apiLogout(c, cookie), 204, `${round}: logout on C`);
        expectStatus(await apiMe(a, cookie), 401, `${round}: /api/me on A after the logout`);
        expectStatus(await apiMe(b, cookie), 401, `${round}: /api/me on B after the logout`);
      }
    } finally {
      remove();
    }
  });

  it('users stay in the SQLite file; every route answers 503 while memcached is down, and recovers', {
    timeout: 60_000,
  }, async (context) => {
    const memcached = await privateMemcached(context);
    await addUser(temp.db, 'ada', PASSWORD);
    const store = `memcached://${memcached.address}`;
    const check = await runCli(['config', 'check', '--store', store, '--db', temp.db]);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toMatch(
      new RegExp(`^sessions .* memcached://${memcached.address} +--store$`, 'm'),
    );
    expect(check.stdout).toContain(`users     users, remember-me tokens         ${temp.db}`);
    expect(check.stdout).toMatch(/--db \(SQLite: no --users, and the --store is not durable\)$/m);
    const server = await startServe(['--store', store, '--db', temp.db, '--metrics']);
    // memcached may evict: readiness and metrics report how often it did (-M here: never).
    const ready = await call(`${server.url}/readyz`);
    expectStatus(ready, 200, '/readyz');
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready', evictions: 0 });
    expect((await call(`${server.url}/metrics`)).body).toMatch(/^latchkey_store_evictions 0$/m);
    const login = await apiLogin(server.url, 'ada', PASSWORD);
    expectStatus(login, 200, 'login');
    const cookie = sessionCookie(login);
    expectStatus(await apiMe(server.url, cookie), 200, 'me');

    await memcached.stop();
    expectStatus(await apiMe(server.url, cookie), 503, '/api/me with memcached down');
    expectStatus(await apiLogin(server.url, 'ada', PASSWORD), 503, 'login with memcached down');
    expectStatus(await call(`${server.url}/readyz`), 503, '/readyz with memcached down');
    const dashboard = await call(`${server.url}/dashboard`, {
      headers: { cookie, accept: 'text/html' },
    });
    expectStatus(dashboard, 503, '/dashboard with memcached down');

    // Back, but empty: the session is gone (never "logged in" as anyone), and logging in works.
    await memcached.resume();
    let me = await apiMe(server.url, cookie);
    for (let i = 0; me.status === 503 && i < 50; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      me = await apiMe(server.url, cookie);
    }
    expectStatus(me, 401, '/api/me after memcached came back empty');
    expectStatus(await apiLogin(server.url, 'ada', PASSWORD), 200, 'login after the restart');
  });

  it('an eviction logs the user out (never in as anyone) and shows in /readyz and /metrics', {
    timeout: 60_000,
  }, async (context) => {
    // 2 MiB and no -M: memcached evicts the least recently used items when it is full.
    const memcached = await privateMemcached(context, ['-m', '2']);
    const { db, remove } = tempDir();
    try {
      await addUser(db, 'ada', PASSWORD);
      const server = await startServe([
        '--store',
        `memcached://${memcached.address}`,
        '--db',
        db,
        '--metrics',
      ]);
      expect(server.output()).toContain('LATCHKEY_MEMCACHED_EVICTS');
      const cookie = sessionCookie(await apiLogin(server.url, 'ada', PASSWORD));
      expectStatus(await apiMe(server.url, cookie), 200, 'me before the flood');
      // Someone else's items, of every size near a session's (so every slab class a session's
      // items may sit in), fill memcached many times over, in one pipelined burst.
      const burst = Array.from({ length: 40_000 }, (_, i) => {
        const filler = 'x'.repeat(100 + (i % 20) * 50);
        return `set other-app:${i} 0 60 ${filler.length} noreply\r\n${filler}\r\n`;
      }).join('');
      expect(await rawRequest(memcached.port, `${burst}version\r\n`)).toMatch(/^VERSION /);
      expectStatus(await apiMe(server.url, cookie), 401, 'me after the session was evicted');
      const ready = JSON.parse((await call(`${server.url}/readyz`)).body) as { evictions: number };
      expect(ready.evictions).toBeGreaterThan(0);
      const metrics = (await call(`${server.url}/metrics`)).body;
      const gauge = Number(/^latchkey_store_evictions (\d+)$/m.exec(metrics)?.[1]);
      expect(gauge).toBeGreaterThanOrEqual(ready.evictions);
    } finally {
      remove();
    }
  });

  it('refuses memcached as the users store: it evicts', async (context) => {
    const memcached = await privateMemcached(context);
    const result = await runCli([
      'serve',
      '--port',
      '0',
      '--store',
      `memcached://${memcached.address}`,
      '--users',
      `memcached://${memcached.address}`,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--users.*not durable|durable/);
  });
});
