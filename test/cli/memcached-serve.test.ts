import { MemcachedStore } from 'latchkey/stores/memcached';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Cluster } from '../../src/stores/memcached/connection.js';
import { hashed } from '../../src/stores/memcached/records.js';
import { addUser, runCli, tempDir, useServe } from '../helpers/cli.js';
import { memcachedUnavailable, PrivateMemcached, rawRequest } from '../helpers/memcached-server.js';
import {
  type Answer,
  apiLogin,
  apiLogout,
  apiMe,
  call,
  originOf,
  page,
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

/**
 * Posts a form as a browser does from the page that shows it (`from`, default the form's own
 * page): with that page's CSRF token, its pre-login cookie, and our Origin.
 */
async function postForm(
  url: string,
  action: string,
  fields: Record<string, string>,
  cookie?: string,
  from = action,
): Promise<Answer> {
  const shown = await call(`${url}${from}`, {
    headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', ...(cookie ? { cookie } : {}) },
  });
  const csrf = /name="csrf" value="([^"]+)"/.exec(shown.body)?.[1];
  if (!csrf) throw new Error(`no CSRF token on ${from} (status ${shown.status})`);
  const setCookie = shown.headers['set-cookie'] ?? [];
  const preLogin = (Array.isArray(setCookie) ? setCookie : [setCookie])
    .map((line) => line.split(';')[0] as string)
    .filter((pair) => pair.startsWith('__Host-csrf='));
  const cookies = [cookie, ...preLogin].filter(Boolean).join('; ');
  return call(`${url}${action}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      origin: originOf(url),
      accept: 'text/html',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-site': 'same-origin',
      ...(cookies ? { cookie: cookies } : {}),
    },
    body: new URLSearchParams({ ...fields, csrf }).toString(),
  });
}

/** The server that holds a user's index item. */
function serverOfUser(store: MemcachedStore, userId: string): string {
  const cluster = (store as unknown as { memcached: Cluster }).memcached;
  return cluster.serverOf(cluster.key(`u:${hashed(userId)}`));
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

  it('two memcached servers: losing one logs out only its sessions (401), the rest work, logins land on the other; none left is 503', {
    timeout: 90_000,
  }, async (context) => {
    const [x, y] = [await privateMemcached(context), await privateMemcached(context)] as const;
    const { db, remove } = tempDir();
    try {
      await addUser(db, 'ada', PASSWORD);
      const servers = `${x.address},${y.address}`;
      const server = await startServe(['--store', `memcached://${servers}`, '--db', db]);
      // Where keys live, by the store's own hashing (a store object that never connects).
      const layout = new MemcachedStore(servers);
      const logins: { cookie: string; at: string }[] = [];
      let userId = '';
      for (let i = 0; i < 40 && new Set(logins.map((l) => l.at)).size < 2; i++) {
        const cookie = sessionCookie(
          await apiLogin(server.url, 'ada', PASSWORD, `127.0.2.${i + 1}`),
        );
        const me = JSON.parse((await apiMe(server.url, cookie)).body) as {
          user: { id: string };
          session: { id: string };
        };
        userId = me.user.id;
        logins.push({ cookie, at: layout.serverOfSession(me.session.id) });
      }
      for (let i = 0; i < 6; i++) {
        const cookie = sessionCookie(
          await apiLogin(server.url, 'ada', PASSWORD, `127.0.3.${i + 1}`),
        );
        const me = JSON.parse((await apiMe(server.url, cookie)).body) as {
          session: { id: string };
        };
        logins.push({ cookie, at: layout.serverOfSession(me.session.id) });
      }
      // Lose the server that does not hold ada's index item (a user whose index is lost cannot
      // log in, list or log out everywhere until it is back: 503, by design).
      const indexAt = serverOfUser(layout, userId);
      const [kept, lost] = indexAt === x.address ? [x, y] : [y, x];
      const onLost = logins.filter((l) => l.at === lost.address);
      const onKept = logins.filter((l) => l.at === kept.address);
      expect(onLost.length, 'sessions on the server to lose').toBeGreaterThan(0);
      expect(onKept.length, 'sessions on the server kept').toBeGreaterThan(0);

      await lost.stop();
      for (const { cookie } of onLost) {
        expectStatus(
          await apiMe(server.url, cookie),
          401,
          '/api/me of a session on the lost server',
        );
        const dashboard = await page(`${server.url}/dashboard`, cookie);
        expectStatus(dashboard, 303, '/dashboard of a session on the lost server');
      }
      for (const { cookie } of onKept) {
        expectStatus(
          await apiMe(server.url, cookie),
          200,
          '/api/me of a session on the kept server',
        );
      }
      expectStatus(await call(`${server.url}/readyz`), 200, '/readyz with one server left');
      for (let i = 0; i < 5; i++) {
        const login = await apiLogin(server.url, 'ada', PASSWORD, `127.0.4.${i + 1}`);
        expectStatus(login, 200, 'a new login with one server lost');
        const cookie = sessionCookie(login);
        const me = JSON.parse((await apiMe(server.url, cookie)).body) as {
          session: { id: string };
        };
        expect(layout.serverOfSession(me.session.id)).toBe(kept.address);
      }
      // "Log out everywhere" cannot delete the sessions on the lost server: 503, never a false
      // success; it did delete the ones it reached.
      const [first, second] = onKept as [(typeof onKept)[number], (typeof onKept)[number]];
      const everywhere = await call(`${server.url}/api/logout-everywhere`, {
        method: 'POST',
        headers: { cookie: first.cookie, origin: originOf(server.url) },
      });
      expectStatus(everywhere, 503, 'log out everywhere with a server lost');
      expectStatus(await apiMe(server.url, second.cookie), 401, 'a reached session after it');

      // Back on the same port (empty): its sessions stay refused, and log out everywhere works
      // again once the store has tried the server again (once a second).
      await lost.resume();
      for (const { cookie } of onLost) {
        expectStatus(
          await apiMe(server.url, cookie),
          401,
          'a lost session after its server is back',
        );
      }
      let again: Answer | null = null;
      for (let i = 0; again?.status !== 204 && i < 30; i++) {
        if (again) await new Promise((resolve) => setTimeout(resolve, 100));
        // A failed attempt ends the current session too: log in afresh for each.
        const fresh = sessionCookie(
          await apiLogin(server.url, 'ada', PASSWORD, `127.0.6.${i + 1}`),
        );
        again = await call(`${server.url}/api/logout-everywhere`, {
          method: 'POST',
          headers: { cookie: fresh, origin: originOf(server.url) },
        });
        if (again.status !== 503)
          expectStatus(again, 204, 'log out everywhere once every server answers');
      }
      expect(again?.status).toBe(204);

      // Both lost: every route answers 503.
      const last = sessionCookie(await apiLogin(server.url, 'ada', PASSWORD, '127.0.5.2'));
      await Promise.all([x.stop(), y.stop()]);
      expectStatus(await apiMe(server.url, last), 503, '/api/me with no server');
      expectStatus(await page(`${server.url}/dashboard`, last), 503, '/dashboard with no server');
      expectStatus(
        await apiLogin(server.url, 'ada', PASSWORD, '127.0.5.3'),
        503,
        'login with no server',
      );
      expectStatus(await call(`${server.url}/readyz`), 503, '/readyz with no server');
    } finally {
      remove();
    }
  });

  it('the seed flow on --store memcached: sign-up, login, dashboard, idle expiry, sessions page, revoke, log out everywhere, logout; users survive a memcached restart', {
    timeout: 90_000,
  }, async (context) => {
    const memcached = await privateMemcached(context);
    const { db, remove } = tempDir();
    try {
      const server = await startServe([
        '--allow-signup',
        '--store',
        `memcached://${memcached.address}`,
        '--db',
        db,
        '--idle-timeout',
        '2s',
      ]);
      const { url } = server;
      // Sign-up (the account goes to the SQLite file), signed in at once.
      const signup = await postForm(url, '/signup', { username: 'ada', password: PASSWORD });
      expectStatus(signup, 303, 'sign-up');
      expect(signup.headers.location).toBe('/dashboard');
      const first = sessionCookie(signup);
      const dashboard = await page(`${url}/dashboard`, first);
      expectStatus(dashboard, 200, 'dashboard after sign-up');
      expect(dashboard.body).toContain('Signed in as <strong>ada</strong>');
      // Idle expiry: a page redirects to the login page, clearing the cookie.
      await new Promise((resolve) => setTimeout(resolve, 2300));
      const expired = await page(`${url}/profile`, first);
      expectStatus(expired, 303, 'a page after the idle timeout');
      expect(expired.headers.location).toBe('/login?next=%2Fprofile');

      // Log in on three devices: a form login and two API logins.
      const login = await postForm(url, '/login', { username: 'ada', password: PASSWORD });
      expectStatus(login, 303, 'form login');
      const mine = sessionCookie(login);
      const [phone, tablet] = [
        sessionCookie(await apiLogin(url, 'ada', PASSWORD, '127.0.7.1')),
        sessionCookie(await apiLogin(url, 'ada', PASSWORD, '127.0.7.2')),
      ];
      const idOf = async (cookie: string) =>
        (JSON.parse((await apiMe(url, cookie)).body) as { session: { id: string } }).session.id;
      const phoneId = await idOf(phone);
      // The sessions page lists all three; revoking one ends it at once.
      const sessions = await page(`${url}/sessions`, mine);
      expectStatus(sessions, 200, 'sessions page');
      expect(sessions.body).toContain(phoneId);
      expect(sessions.body).toContain(await idOf(tablet));
      const revoked = await postForm(url, '/sessions/revoke', { id: phoneId }, mine, '/sessions');
      expectStatus(revoked, 303, 'revoke one session');
      expect(revoked.headers.location).toBe('/sessions');
      expectStatus(await apiMe(url, phone), 401, 'the revoked session');
      expectStatus(await apiMe(url, tablet), 200, 'another session after the revoke');
      // Log out everywhere: this session and every other.
      const everywhere = await postForm(url, '/logout-everywhere', {}, mine, '/dashboard');
      expectStatus(everywhere, 303, 'log out everywhere');
      expectStatus(await apiMe(url, tablet), 401, 'another session after log out everywhere');
      expectStatus(await apiMe(url, mine), 401, 'this session after log out everywhere');
      // Logout.
      const again = sessionCookie(
        await postForm(url, '/login', { username: 'ada', password: PASSWORD }),
      );
      const logout = await postForm(url, '/logout', {}, again, '/dashboard');
      expectStatus(logout, 303, 'logout');
      expectStatus(await page(`${url}/dashboard`, again), 303, 'dashboard after logout');

      // A memcached restart loses sessions, never users: they live in the SQLite file.
      const before = sessionCookie(await apiLogin(url, 'ada', PASSWORD, '127.0.7.3'));
      await memcached.stop();
      await memcached.resume();
      let me = await apiMe(url, before);
      for (let i = 0; me.status === 503 && i < 50; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        me = await apiMe(url, before);
      }
      expectStatus(me, 401, 'a session after the memcached restart');
      const after = await apiLogin(url, 'ada', PASSWORD, '127.0.7.4');
      expectStatus(after, 200, 'login after the memcached restart');
      expectStatus(await apiMe(url, sessionCookie(after)), 200, 'me after the restart');
    } finally {
      remove();
    }
  });

  it('an eviction logs the user out (never in as anyone) and shows in /readyz and /metrics', {
    timeout: 60_000,
  }, async (context) => {
    // 1 MiB (-m 1; memcached then needs items of at most half of it, -I 512k) and no -M: it
    // evicts the least recently used items when it is full.
    const memcached = await privateMemcached(context, ['-m', '1', '-I', '512k']);
    const { db, remove } = tempDir();
    try {
      await addUser(db, 'ada', PASSWORD);
      await addUser(db, 'grace', PASSWORD);
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
      // More sessions of two users, some of which survive the flood (the most recently used).
      const others: { name: string; cookie: string }[] = [];
      for (let i = 0; i < 6; i++) {
        const name = i % 2 ? 'ada' : 'grace';
        const login = await apiLogin(server.url, name, PASSWORD, `127.0.8.${i + 1}`);
        others.push({ name, cookie: sessionCookie(login) });
      }
      // Someone else's items, of every size near a session's (so every slab class a session's
      // items may sit in), fill memcached many times over, in one pipelined burst.
      const burst = Array.from({ length: 40_000 }, (_, i) => {
        const filler = 'x'.repeat(100 + (i % 20) * 50);
        return `set other-app:${i} 0 60 ${filler.length} noreply\r\n${filler}\r\n`;
      }).join('');
      expect(await rawRequest(memcached.port, `${burst}version\r\n`)).toMatch(/^VERSION /);
      expectStatus(await apiMe(server.url, cookie), 401, 'me after the session was evicted');
      // Every other session either was evicted (401, or 303 to the login page) or is its own.
      for (const { name, cookie: other } of others) {
        const me = await apiMe(server.url, other);
        if (me.status === 200) expect(JSON.parse(me.body).user.username).toBe(name);
        else expectStatus(me, 401, `${name}'s session after the flood`);
        const shown = await page(`${server.url}/dashboard`, other);
        if (shown.status === 200)
          expect(shown.body).toContain(`Signed in as <strong>${name}</strong>`);
        else expectStatus(shown, 303, `${name}'s dashboard after the flood`);
      }
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
