import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, runCli, type ServeProcess, tempDir, useServe } from '../helpers/cli.js';

const PASSWORD = 'correct horse battery';
const NAVIGATE = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

const temp = tempDir();
beforeAll(() => addUser(temp.db, 'ada', PASSWORD));
afterAll(() => temp.remove());

const startServe = useServe();

async function serve(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<ServeProcess> {
  return startServe(args, { env });
}

/** The `name=value` part of the first Set-Cookie. */
function cookieOf(response: Response): string {
  const [setCookie] = response.headers.getSetCookie();
  if (!setCookie) throw new Error(`no Set-Cookie (status ${response.status})`);
  return setCookie.split(';')[0] as string;
}

/**
 * Posts a form the way a browser does from the page that shows it: with the page's CSRF token
 * (and the pre-login cookie the login page sets) and our own Origin.
 */
async function postForm(
  url: string,
  fields: Record<string, string>,
  cookie?: string,
): Promise<Response> {
  const target = new URL(url);
  const formPage = ['/login', '/signup'].includes(target.pathname) ? target.pathname : '/dashboard';
  const shown = await page(`${target.origin}${formPage}`, cookie);
  const csrf = /name="csrf" value="([^"]+)"/.exec(await shown.text())?.[1];
  if (!csrf) throw new Error(`no CSRF token on ${formPage} (status ${shown.status})`);
  const preLogin = shown.headers
    .getSetCookie()
    .map((line) => line.split(';')[0] as string)
    .filter((pair) => pair.startsWith('__Host-csrf='));
  const cookies = [cookie, ...preLogin].filter(Boolean).join('; ');
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      origin: target.origin,
      ...NAVIGATE,
      ...(cookies ? { cookie: cookies } : {}),
    },
    body: new URLSearchParams({ ...fields, csrf }),
  });
}

async function apiLogin(url: string, username: string, password = PASSWORD): Promise<Response> {
  return fetch(`${url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: url },
    body: JSON.stringify({ username, password }),
  });
}

async function loggedIn(url: string, username: string, password = PASSWORD): Promise<string> {
  const response = await apiLogin(url, username, password);
  expect(response.status).toBe(200);
  return cookieOf(response);
}

function page(url: string, cookie?: string): Promise<Response> {
  return fetch(url, {
    redirect: 'manual',
    headers: { ...NAVIGATE, ...(cookie ? { cookie } : {}) },
  });
}

function me(url: string, cookie: string): Promise<Response> {
  return fetch(`${url}/api/me`, { headers: { cookie } });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Status, headers except Date and the request id, and body: what must not tell two failures apart. */
async function snapshot(response: Response) {
  const headers = [...response.headers].filter(
    ([name]) => name !== 'date' && name !== 'x-request-id',
  );
  return { status: response.status, headers, body: await response.text() };
}

describe('latchkey serve, run as the built CLI, walks the seed sequence diagram', () => {
  it('login → cookie → dashboard → idle expiry → login again → logout', async () => {
    const { url } = await serve(['--db', temp.db, '--idle-timeout', '1s']);

    // Browser->>Server: POST /login (username, password); Server-->>Browser: Set-Cookie
    const login = await postForm(`${url}/login`, { username: 'ada', password: PASSWORD });
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('/dashboard');
    const [setCookie] = login.headers.getSetCookie();
    expect(setCookie).toMatch(
      /^__Host-session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; Secure; SameSite=Strict$/,
    );
    expect(login.headers.get('cache-control')).toBe('no-store');
    const cookie = cookieOf(login);
    const apiCookie = await loggedIn(url, 'ada');

    // GET /dashboard (with session_id cookie) → Dashboard (200 OK)
    const dashboard = await page(`${url}/dashboard`, cookie);
    expect(dashboard.status).toBe(200);
    expect(dashboard.headers.get('cache-control')).toBe('no-store');
    expect(await dashboard.text()).toContain('Signed in as <strong>ada</strong>');

    // Session expires after idle timeout; GET /profile → redirect to /login (HTML), 401 (API)
    await sleep(1300);
    const profile = await page(`${url}/profile`, cookie);
    expect(profile.status).toBe(303);
    expect(profile.headers.get('location')).toBe('/login?next=%2Fprofile');
    expect(profile.headers.getSetCookie()[0]).toMatch(/^__Host-session=; Max-Age=0/);
    const api = await fetch(`${url}/profile`, {
      headers: { cookie: apiCookie, accept: 'application/json' },
    });
    expect(api.status).toBe(401);
    expect(await api.json()).toEqual({ error: 'unauthenticated' });
    expect((await me(url, apiCookie)).status).toBe(401);

    // Log in again, landing on the page asked for.
    const again = await postForm(`${url}/login`, {
      username: 'ada',
      password: PASSWORD,
      next: '/profile',
    });
    expect(again.headers.get('location')).toBe('/profile');
    const second = cookieOf(again);
    expect(second).not.toBe(cookie);
    expect((await page(`${url}/profile`, second)).status).toBe(200);

    // POST /logout → cookie cleared and the old cookie refused.
    const logout = await postForm(`${url}/logout`, {}, second);
    expect(logout.status).toBe(303);
    expect(logout.headers.get('location')).toBe('/login');
    expect(logout.headers.getSetCookie()[0]).toMatch(
      /^__Host-session=; Max-Age=0; Path=\/;.*Expires=Thu, 01 Jan 1970/,
    );
    expect(logout.headers.get('clear-site-data')).toBe('"cache", "storage"');
    expect((await page(`${url}/dashboard`, second)).status).toBe(303);
    expect((await me(url, second)).status).toBe(401);
  });

  it('CLI changes reach the running server at its next request', async () => {
    await addUser(temp.db, 'grace', PASSWORD);
    const { url } = await serve(['--db', temp.db]);
    const db = ['--db', temp.db];
    const first = await loggedIn(url, 'grace');
    const second = await loggedIn(url, 'grace');
    const firstId = ((await (await me(url, first)).json()) as { session: { id: string } }).session
      .id;

    const listed = await runCli(['sessions', 'list', '--user', 'grace', '--json', ...db]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(firstId);
    expect(listed.stdout).not.toContain(first.split('=')[1]);

    expect((await runCli(['sessions', 'revoke', firstId, ...db])).code).toBe(0);
    expect((await me(url, first)).status).toBe(401);
    expect((await me(url, second)).status).toBe(200);

    expect((await runCli(['user', 'disable', 'grace', ...db])).code).toBe(0);
    expect((await me(url, second)).status).toBe(401);
    expect((await apiLogin(url, 'grace')).status).toBe(401);

    expect((await runCli(['user', 'enable', 'grace', ...db])).code).toBe(0);
    const third = await loggedIn(url, 'grace');
    expect((await runCli(['sessions', 'revoke-user', 'grace', ...db])).code).toBe(0);
    expect((await me(url, third)).status).toBe(401);

    const changed = await runCli(['user', 'passwd', 'grace', '--password-stdin', ...db], {
      input: 'a brand new passphrase\n',
    });
    expect(changed.code).toBe(0);
    expect((await apiLogin(url, 'grace')).status).toBe(401);
    const fourth = await loggedIn(url, 'grace', 'a brand new passphrase');

    expect((await runCli(['user', 'remove', 'grace', ...db])).code).toBe(0);
    expect((await me(url, fourth)).status).toBe(401);
    expect((await apiLogin(url, 'grace', 'a brand new passphrase')).status).toBe(401);
  });

  it('sessions survive a server restart (SQLite)', async () => {
    const before = await serve(['--db', temp.db]);
    const cookie = await loggedIn(before.url, 'ada');
    expect(await before.stop()).toBe(0);
    const after = await serve(['--db', temp.db]);
    const response = await page(`${after.url}/dashboard`, cookie);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('ada');
  });

  it('an unknown user and a wrong password get byte-identical answers, on HTML and API login', async () => {
    const { url } = await serve(['--db', temp.db]);
    const form = { username: 'newcomer', password: 'not the password' };
    const json = () => apiLogin(url, form.username, form.password);
    // One browser: the same pre-login cookie, so the same CSRF token in both pages.
    const preLogin = cookieOf(await page(`${url}/login`));
    const unknownHtml = await snapshot(await postForm(`${url}/login`, form, preLogin));
    const unknownApi = await snapshot(await json());

    await addUser(temp.db, 'newcomer', PASSWORD);
    const wrongHtml = await snapshot(await postForm(`${url}/login`, form, preLogin));
    const wrongApi = await snapshot(await json());

    expect(unknownHtml.status).toBe(401);
    expect(unknownHtml.body).toContain('Incorrect username or password.');
    expect(unknownHtml.body).toContain('value="newcomer"');
    expect(unknownHtml.body).not.toContain('not the password');
    expect(wrongHtml).toEqual(unknownHtml);
    expect(unknownApi).toMatchObject({ status: 401, body: '{"error":"invalid_credentials"}' });
    expect(wrongApi).toEqual(unknownApi);
  });

  it('SIGTERM lets an in-flight request finish, refuses new ones and exits 0', async () => {
    const server = await serve(['--db', temp.db]);
    const { port, hostname } = new URL(server.url);
    const body = JSON.stringify({ username: 'ada', password: PASSWORD });
    const inFlight = new Promise<{ status: number; cookie: string }>((resolve, reject) => {
      const req = request(
        {
          host: hostname,
          port,
          method: 'POST',
          path: '/api/login',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            origin: server.url,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, cookie: res.headers['set-cookie']?.[0] ?? '' }),
          );
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 10));
      // The rest of the body arrives after the server was told to stop.
      setTimeout(() => req.end(body.slice(10)), 400);
    });
    await sleep(150);
    const exited = server.stop();
    await sleep(100);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(answered.cookie).toMatch(/^__Host-session=/);
    expect(await exited).toBe(0);
  });
});

describe('latchkey serve configuration', () => {
  it('serves the login page the way npm start does, well within 60 s', async () => {
    const fresh = tempDir();
    const started = Date.now();
    const { url } = await serve(['--allow-signup', '--db', fresh.db]);
    const response = await fetch(`${url}/login`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('<h1>Log in</h1>');
    expect(Date.now() - started).toBeLessThan(60_000);
    expect((await fetch(`${url}/signup`)).status).toBe(200);
    fresh.remove();
  });

  it('reads LATCHKEY_* environment variables; flags win', async () => {
    const { url } = await serve(['--db', temp.db], {
      LATCHKEY_ALLOW_SIGNUP: '1',
      LATCHKEY_COOKIE_NAME: '__Host-sid',
      LATCHKEY_DB: '/nonexistent/ignored.db',
    });
    expect((await fetch(`${url}/signup`)).status).toBe(200);
    expect(cookieOf(await apiLogin(url, 'ada'))).toMatch(/^__Host-sid=/);
  });

  it('without --allow-signup there is no sign-up', async () => {
    const { url } = await serve(['--db', temp.db]);
    expect((await fetch(`${url}/signup`)).status).toBe(404);
    const response = await fetch(`${url}/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
      body: new URLSearchParams({ username: 'eve', password: PASSWORD }),
    });
    expect(response.status).toBe(404);
  });

  it.each([
    [['--port', 'abc'], /--port: "abc" is not a port number/],
    [['--port', '70000'], /--port/],
    [['--idle-timeout', 'soon'], /--idle-timeout: "soon" is not a duration/],
    [
      ['--idle-timeout', '2h', '--absolute-timeout', '1h'],
      /idleTimeout .* must not exceed absoluteTimeout/,
    ],
    [['--host', '0.0.0.0'], /browsers drop Secure cookies on plain http/],
    [['--allow-signup=maybe'], /allow-signup/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--trust-proxy', 'not-an-ip'], /--trust-proxy: "not-an-ip" is not an IP address/],
    [['--cookie-name', 'bad name'], /cookie name/],
  ])('refuses %j with exit code 2 and a one-line reason', async (args, reason) => {
    const result = await runCli(['serve', '--db', temp.db, ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(reason);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a bad LATCHKEY_PORT like a bad --port', async () => {
    const result = await runCli(['serve', '--db', temp.db], { env: { LATCHKEY_PORT: 'abc' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--port: "abc"/);
  });

  it('fails with exit code 1 when the port is taken or the database cannot be opened', async () => {
    const { url } = await serve(['--db', temp.db]);
    const taken = await runCli(['serve', '--db', temp.db, '--port', new URL(url).port]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/EADDRINUSE/);
    const noDir = await runCli(['serve', '--db', '/nonexistent/dir/latchkey.db']);
    expect(noDir.code).toBe(1);
    expect(noDir.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('listens on another address only when told a proxy serves HTTPS', async () => {
    const { url } = await serve(['--db', temp.db, '--host', '0.0.0.0', '--behind-https']);
    expect(url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    const port = new URL(url).port;
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('prints help for serve and exits 0', async () => {
    const result = await runCli(['serve', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: latchkey serve');
    expect(result.stdout).toContain('LATCHKEY_IDLE_TIMEOUT');
  });
});
