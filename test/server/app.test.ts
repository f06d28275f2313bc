import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeHtml } from '../../src/http/shared.js';
import { CsrfTokens, Latchkey, MemoryStore } from '../../src/index.js';
import { type AppOptions, createApp } from '../../src/server/app.js';
import { html } from '../../src/server/html.js';
import { clientIp, isLoopback } from '../../src/server/request.js';
import { readServeSettings } from '../../src/server/settings.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';

const PASSWORD = 'correct horse battery';
const NAVIGATE = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

interface TestServer {
  url: string;
  auth: Latchkey;
  store: MemoryStore;
  close(): Promise<void>;
}

async function listen(options: Partial<AppOptions> = {}): Promise<TestServer> {
  const store = new MemoryStore();
  const auth = new Latchkey({ store, users: store });
  const server: Server = createServer(
    createApp({
      latchkey: auth,
      store,
      allowSignup: true,
      trustedProxies: new Set(),
      csrf: new CsrfTokens('a test secret of at least thirty-two bytes'),
      https: false,
      loopbackOnly: true,
      ...options,
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    auth,
    store,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let app: TestServer;
beforeAll(async () => {
  app = await listen();
  await app.auth.createUser('ada', PASSWORD);
  await app.auth.createUser('grace', PASSWORD);
});
afterAll(() => app.close());

async function login(username = 'ada'): Promise<string> {
  const response = await call(`${app.url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: app.url },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  expect(response.status).toBe(200);
  return (response.headers.getSetCookie()[0] as string).split(';')[0] as string;
}

function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${app.url}${path}`, { redirect: 'manual', headers: { ...NAVIGATE, ...headers } });
}

/** fetch, as a same-origin page would send it: unsafe methods carry the page's Origin. */
function call(url: string, init: RequestInit = {}): Promise<Response> {
  const method = init.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') return fetch(url, init);
  const origin = new URL(url).origin;
  return fetch(url, { ...init, headers: { origin, ...(init.headers as Record<string, string>) } });
}

/** The CSRF token a page gives its forms, and the pre-login cookie it set (if any). */
async function formToken(
  path: string,
  cookie: string | undefined,
): Promise<{ csrf: string; cookie: string }> {
  const response = await get(path, cookie ? { cookie } : {});
  const csrf = /name="csrf" value="([^"]+)"/.exec(await response.text())?.[1];
  if (!csrf) throw new Error(`no CSRF token on ${path}`);
  const preLogin = response.headers
    .getSetCookie()
    .map((line) => line.split(';')[0] as string)
    .find((pair) => pair.startsWith('__Host-csrf='));
  return { csrf, cookie: [cookie, preLogin].filter(Boolean).join('; ') };
}

/** A same-origin request with a form body and no CSRF token (API calls, method checks). */
function rawPost(
  path: string,
  body: string,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<Response> {
  return call(`${app.url}${path}`, {
    method,
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
}

/** A form post as the browser sends it from our own page, CSRF token included. */
async function post(
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const source = path === '/login' || path === '/signup' ? path : '/dashboard';
  const token = await formToken(source, headers.cookie);
  const fields = `${body}${body ? '&' : ''}csrf=${encodeURIComponent(token.csrf)}`;
  return call(`${app.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...headers,
      ...(token.cookie ? { cookie: token.cookie } : {}),
    },
    body: fields,
  });
}

/** A GET through node:http: fetch would replace Sec-Fetch-Mode with "cors". */
function rawGet(
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${app.url}${path}`, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function sessionIds(cookie: string): Promise<{ id: string; current: boolean }[]> {
  const response = await get('/api/sessions', { cookie });
  return ((await response.json()) as { sessions: { id: string; current: boolean }[] }).sessions;
}

describe('pages', () => {
  it('GET / sends visitors to /login and signed-in users to /dashboard', async () => {
    expect((await get('/')).headers.get('location')).toBe('/login');
    expect((await get('/', { cookie: await login() })).headers.get('location')).toBe('/dashboard');
  });

  it('the login page is accessible HTML with labels, no script and no inline style', async () => {
    const response = await get('/login?next=%2Fsessions');
    const body = await response.text();
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(body).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(body).toContain('<label for="username">Username</label>');
    expect(body).toContain('<label for="password">Password</label>');
    expect(body).toContain('<input type="hidden" name="next" value="/sessions">');
    expect(body).not.toMatch(/<script|style=|<style/);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('every response carries no-store except the stylesheet', async () => {
    const cookie = await login();
    for (const path of [
      '/',
      '/login',
      '/signup',
      '/dashboard',
      '/profile',
      '/sessions',
      '/api/me',
      '/healthz',
      '/nope',
    ]) {
      expect((await get(path, { cookie })).headers.get('cache-control'), path).toBe('no-store');
    }
    const css = await get('/assets/style.css');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(css.headers.get('cache-control')).toBe('public, max-age=3600');
    expect(await css.text()).toContain(':focus-visible');
  });

  it('a signed-in user visiting /login goes to a safe next or the dashboard', async () => {
    const cookie = await login();
    expect((await get('/login?next=%2Fprofile', { cookie })).headers.get('location')).toBe(
      '/profile',
    );
    expect((await get('/login?next=%2F%2Fevil.example', { cookie })).headers.get('location')).toBe(
      '/dashboard',
    );
  });

  it('a failed form login keeps the username, never the password, and answers 401', async () => {
    const response = await post(
      '/login',
      'username=ada&password=wrong+password+here&next=%2Fprofile',
    );
    const body = await response.text();
    expect(response.status).toBe(401);
    expect(body).toContain('role="alert"');
    expect(body).toContain('Incorrect username or password.');
    expect(body).toContain('value="ada"');
    expect(body).toContain('name="next" value="/profile"');
    expect(body).not.toContain('wrong password here');
    expect(response.headers.getSetCookie()).toEqual([]);
  });

  it('a form login lands on a safe next only', async () => {
    const cases: [string, string][] = [
      ['%2Fsessions%3Fa%3D1', '/sessions?a=1'],
      ['%2F%2Fevil.example', '/dashboard'],
      ['https%3A%2F%2Fevil.example', '/dashboard'],
      ['%2F%5Cevil.example', '/dashboard'],
      ['', '/dashboard'],
    ];
    for (const [next, location] of cases) {
      const response = await post(
        '/login',
        `username=ada&password=${encodeURIComponent(PASSWORD)}&next=${next}`,
      );
      expect(response.headers.get('location'), next).toBe(location);
    }
  });

  it('missing fields are a 400 with a clear message, decided without hashing', async () => {
    const response = await post('/login', 'username=ada');
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('Enter your username and password.');
    const twice = await post(
      '/login',
      `username=ada&username=grace&password=${encodeURIComponent(PASSWORD)}`,
    );
    expect(twice.status).toBe(400);
  });

  it('every interpolated value is HTML-escaped', async () => {
    const name = '<img src=x onerror=alert(1)>"\'&';
    const signup = await post(
      '/signup',
      `username=${encodeURIComponent(name)}&password=${encodeURIComponent(PASSWORD)}`,
    );
    const cookie = (signup.headers.getSetCookie()[0] as string).split(';')[0] as string;
    const body = await (await get('/dashboard', { cookie })).text();
    expect(body).not.toContain('<img');
    expect(body).toContain(escapeHtml(name));
    const failed = await (
      await post('/login', `username=${encodeURIComponent(name)}&password=x`)
    ).text();
    expect(failed).not.toContain('<img');
    const agent = await call(`${app.url}/sessions`, {
      headers: { ...NAVIGATE, cookie, 'user-agent': '<script>x</script>' },
    });
    expect(await agent.text()).not.toContain('<script>');
  });

  it('the html tag escapes values and keeps nested markup', () => {
    expect(html`<p>${'<b>'}</p>${[html`<i>${'&'}</i>`, null, false]}`.markup).toBe(
      '<p>&#60;b&#62;</p><i>&#38;</i>',
    );
  });
});

describe('sign-up', () => {
  it('creates the account, logs it in and lands on the dashboard', async () => {
    const response = await post(
      '/signup',
      `username=Newbie&password=${encodeURIComponent(PASSWORD)}`,
    );
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/dashboard');
    const cookie = (response.headers.getSetCookie()[0] as string).split(';')[0] as string;
    expect(await (await get('/dashboard', { cookie })).text()).toContain('Newbie');
  });

  it('a taken name is a 409 and a short password a 400, with the reason', async () => {
    const taken = await post('/signup', `username=ADA&password=${encodeURIComponent(PASSWORD)}`);
    expect(taken.status).toBe(409);
    expect(await taken.text()).toContain('That username is taken.');
    const short = await post('/signup', 'username=someone&password=short');
    expect(short.status).toBe(400);
    expect(await short.text()).toContain('at least 8 characters');
  });

  it('the JSON twin answers 201, 409 and 400', async () => {
    const signup = (body: unknown) =>
      call(`${app.url}/api/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const created = await signup({ username: 'jsonuser', password: PASSWORD });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { user: { username: string } }).user.username).toBe(
      'jsonuser',
    );
    expect((await signup({ username: 'JSONUSER', password: PASSWORD })).status).toBe(409);
    expect((await signup({ username: 'x', password: 1 })).status).toBe(400);
  });

  it('is absent without allowSignup', async () => {
    const closed = await listen({ allowSignup: false });
    expect((await call(`${closed.url}/signup`)).status).toBe(404);
    expect((await call(`${closed.url}/login`).then((r) => r.text())).includes('/signup')).toBe(
      false,
    );
    await closed.close();
  });
});

describe('sessions page and API', () => {
  it('lists this user\'s sessions with "this device", revokes one and all others', async () => {
    const a = await login('grace');
    const b = await login('grace');
    const c = await login('grace');
    const page = await (await get('/sessions', { cookie: a })).text();
    expect(page).toContain('This device');
    expect(page).toContain('Log out all other sessions');
    const ids = await sessionIds(a);
    const bId = (await sessionIds(b)).find((s) => s.current)?.id as string;
    expect(ids.filter((s) => s.current)).toHaveLength(1);
    expect(page).toContain(`value="${bId}"`);

    const revoked = await post('/sessions/revoke', `id=${bId}`, { cookie: a });
    expect(revoked.headers.get('location')).toBe('/sessions');
    expect((await get('/dashboard', { cookie: b })).status).toBe(303);
    expect((await get('/dashboard', { cookie: c })).status).toBe(200);

    await post('/sessions/revoke-others', '', { cookie: a });
    expect((await get('/dashboard', { cookie: c })).status).toBe(303);
    expect((await get('/dashboard', { cookie: a })).status).toBe(200);
  });

  it("someone else's session id is not found, like an unknown one, and stays alive", async () => {
    const mine = await login('ada');
    const theirs = await login('grace');
    const theirId = (await sessionIds(theirs)).find((s) => s.current)?.id as string;
    for (const id of [theirId, 'unknown-id']) {
      const api = await call(`${app.url}/api/sessions/${id}`, {
        method: 'DELETE',
        headers: { cookie: mine },
      });
      expect(api.status).toBe(404);
      expect(await api.json()).toEqual({ error: 'not_found' });
      expect((await post('/sessions/revoke', `id=${id}`, { cookie: mine })).status).toBe(404);
    }
    expect((await get('/api/me', { cookie: theirs })).status).toBe(200);
  });

  it('DELETE /api/sessions/:id revokes one of mine; my own clears my cookie', async () => {
    const a = await login('ada');
    const b = await login('ada');
    const bId = (await sessionIds(b)).find((s) => s.current)?.id as string;
    const deleted = await call(`${app.url}/api/sessions/${bId}`, {
      method: 'DELETE',
      headers: { cookie: a },
    });
    expect(deleted.status).toBe(204);
    expect(deleted.headers.getSetCookie()).toEqual([]);
    expect((await get('/api/me', { cookie: b })).status).toBe(401);
    const aId = (await sessionIds(a)).find((s) => s.current)?.id as string;
    const self = await call(`${app.url}/api/sessions/${aId}`, {
      method: 'DELETE',
      headers: { cookie: a },
    });
    expect(self.headers.getSetCookie()[0]).toMatch(/Max-Age=0/);
  });

  it('GET /api/me gives the user and session; POST /api/logout answers 204 and clears the cookie', async () => {
    const cookie = await login('ada');
    const me = (await (await get('/api/me', { cookie })).json()) as {
      user: unknown;
      session: Record<string, unknown>;
    };
    expect(me.user).toMatchObject({ username: 'ada' });
    expect(Object.keys(me.session).sort()).toEqual(
      [
        'absoluteExpiresAt',
        'authenticatedAt',
        'createdAt',
        'id',
        'idleExpiresAt',
        'ip',
        'lastSeenAt',
        'userAgent',
      ].sort(),
    );
    expect(JSON.stringify(me)).not.toContain(cookie.split('=')[1]);
    const logout = await call(`${app.url}/api/logout`, { method: 'POST', headers: { cookie } });
    expect(logout.status).toBe(204);
    expect(logout.headers.getSetCookie()[0]).toMatch(/^__Host-session=; Max-Age=0/);
    expect((await get('/api/me', { cookie })).status).toBe(401);
  });

  it('GET never changes state: GET /logout leaves the session valid', async () => {
    const cookie = await login('ada');
    expect((await get('/logout', { cookie })).status).toBe(405);
    expect((await get('/sessions/revoke-others', { cookie })).status).toBe(405);
    expect((await get('/api/me', { cookie })).status).toBe(200);
  });
});

describe('hostile and malformed requests', () => {
  it('JSON endpoints refuse other media types with 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']) {
      const response = await rawPost(
        '/api/login',
        JSON.stringify({ username: 'ada', password: PASSWORD }),
        {
          'content-type': type,
        },
      );
      expect(response.status).toBe(415);
      expect(await response.json()).toEqual({ error: 'unsupported_media_type' });
    }
    expect(
      (await rawPost('/login', 'username=ada', { 'content-type': 'application/json' })).status,
    ).toBe(415);
  });

  it('a 1 MB password is refused fast with 413, never hashed', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const start = performance.now();
    const api = await rawPost('/api/login', JSON.stringify({ username: 'ada', password: big }), {
      'content-type': 'application/json',
    });
    const form = await post('/login', `username=ada&password=${big}`);
    expect(api.status).toBe(413);
    expect(form.status).toBe(413);
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it('a 1,025-character password fits the body limit and is a 400 without hashing', async () => {
    const response = await rawPost(
      '/api/login',
      JSON.stringify({ username: 'ada', password: 'x'.repeat(1025) }),
      {
        'content-type': 'application/json',
      },
    );
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'invalid_request' });
  });

  it('bad JSON, arrays, operator objects and numbers are 400 or the generic 401, never 500', async () => {
    const bodies = [
      '{',
      '[]',
      '"x"',
      'null',
      '{"username":{"$ne":null},"password":"x"}',
      '{"username":"ada","password":12345678}',
      '{"username":"ada\\u0000","password":"correct horse battery"}',
    ];
    for (const body of bodies) {
      const response = await rawPost('/api/login', body, { 'content-type': 'application/json' });
      expect([400, 401], body).toContain(response.status);
      expect(Object.keys((await response.json()) as object)).toEqual(['error']);
    }
    const invalidUtf8 = await call(`${app.url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0xff, 0x7d]),
    });
    expect(invalidUtf8.status).toBe(400);
  });

  it('hostile cookies are no session and never a 500 or echoed', async () => {
    for (const cookie of [
      '__Host-session=',
      `__Host-session=${'A'.repeat(8000)}`,
      '__Host-session=a; __Host-session=b',
      '__host-session=x',
      '__Host-session=%00%0d%0a',
    ]) {
      const response = await get('/api/me', { cookie });
      expect(response.status, cookie).toBe(401);
      expect(await response.text()).not.toContain('AAAA');
    }
  });

  it('unknown paths are 404 and unknown methods on known paths 405 with Allow', async () => {
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/api/nope')).headers.get('content-type')).toBe('application/json');
    const put = await rawPost('/login', '', {}, 'PUT');
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
  });

  it('a store outage is a 503 with Retry-After, never a 500 or a login page', async () => {
    const broken = new SqliteStore(':memory:');
    const down = await listen({
      latchkey: new Latchkey({ store: broken, users: broken }),
      store: broken,
    });
    await broken.close();
    const cookie = `__Host-session=${'A'.repeat(43)}`;
    const page = await call(`${down.url}/dashboard`, {
      redirect: 'manual',
      headers: { ...NAVIGATE, cookie },
    });
    expect(page.status).toBe(503);
    expect(page.headers.get('retry-after')).toBe('5');
    const loginAttempt = await call(`${down.url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'ada', password: PASSWORD }),
    });
    expect(loginAttempt.status).toBe(503);
    expect(await loginAttempt.json()).toEqual({ error: 'unavailable' });
    expect((await call(`${down.url}/readyz`)).status).toBe(503);
    expect((await call(`${down.url}/healthz`)).status).toBe(200);
    await down.close();
  });

  it('/readyz is 200 while the store answers', async () => {
    const response = await call(`${app.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });
});

describe('/auth/verify (forward auth for nginx auth_request and the like)', () => {
  it('answers 401 without a body, a redirect or a cookie when there is no session', async () => {
    for (const cookie of [null, `__Host-session=${'A'.repeat(43)}`]) {
      const direct = await fetch(`${app.url}/auth/verify`, {
        redirect: 'manual',
        headers: cookie ? { ...NAVIGATE, cookie } : NAVIGATE,
      });
      expect(direct.status).toBe(401);
      expect(direct.headers.get('location')).toBeNull();
      expect(direct.headers.get('x-auth-user')).toBeNull();
      expect(await direct.text()).toBe('');
    }
  });

  it('names the user percent-encoded, so a non-ASCII name survives a header', async () => {
    const name = 'Zoë 李';
    const user = await app.auth.createUser(name, PASSWORD);
    const cookie = await login(name);
    const verified = await fetch(`${app.url}/auth/verify`, { headers: { cookie } });
    expect(verified.status).toBe(200);
    expect(verified.headers.get('x-auth-user')).toBe('Zo%C3%AB%20%E6%9D%8E');
    expect(decodeURIComponent(verified.headers.get('x-auth-user') ?? '')).toBe(name);
    expect(verified.headers.get('x-auth-user-id')).toBe(encodeURIComponent(user.id));
    expect(await verified.text()).toBe('');
  });

  it('a store outage is 503 with Retry-After, never 401 (which the proxy would send to login)', async () => {
    const broken = new SqliteStore(':memory:');
    const auth = new Latchkey({ store: broken, users: broken });
    await auth.createUser('ada', PASSWORD);
    const { token } = await auth.create((await auth.findUser('ada'))?.id ?? '');
    const down = await listen({ latchkey: auth, store: broken });
    try {
      const cookie = `__Host-session=${token}`;
      expect((await fetch(`${down.url}/auth/verify`, { headers: { cookie } })).status).toBe(200);
      await broken.close();
      const verify = await fetch(`${down.url}/auth/verify`, {
        redirect: 'manual',
        headers: { cookie },
      });
      expect(verify.status).toBe(503);
      expect(verify.headers.get('retry-after')).toBe('5');
      expect(verify.headers.get('location')).toBeNull();
      expect(verify.headers.getSetCookie()).toEqual([]);
      expect(verify.headers.get('x-auth-user')).toBeNull();
    } finally {
      await down.close();
    }
  });
});

describe('a cross-site navigation without the SameSite=Strict cookie', () => {
  const crossSite = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' };

  it('gets a same-site re-navigation page (meta refresh, no script) once', async () => {
    const response = await rawGet('/sessions?tab=1', crossSite);
    expect(response.status).toBe(200);
    const body = response.body;
    expect(body).toContain(
      '<meta http-equiv="refresh" content="0; url=/sessions?tab=1&#38;renav=1">',
    );
    expect(body).not.toContain('<script');
    const again = await rawGet('/sessions?tab=1&renav=1', crossSite);
    expect(again.status).toBe(303);
    expect(again.location).toBe('/login?next=%2Fsessions%3Ftab%3D1');
  });

  it('a same-origin navigation goes straight to login', async () => {
    const response = await rawGet('/profile', {
      'sec-fetch-site': 'same-origin',
      'sec-fetch-mode': 'navigate',
    });
    expect(response.location).toBe('/login?next=%2Fprofile');
    const withCookie = await rawGet('/profile', { ...crossSite, cookie: await login() });
    expect(withCookie.status).toBe(200);
  });
});

describe('configuration and client addresses', () => {
  it('defaults to 127.0.0.1:3000 and ./latchkey.db; flags beat LATCHKEY_* variables', () => {
    expect(readServeSettings([], {})).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      db: './latchkey.db',
      idleTimeout: 30 * 60_000,
      absoluteTimeout: 12 * 3_600_000,
      touchInterval: 60_000,
      allowSignup: false,
      cookieName: '__Host-session',
      behindHttps: false,
    });
    const env = {
      LATCHKEY_PORT: '4000',
      LATCHKEY_IDLE_TIMEOUT: '2s',
      LATCHKEY_ALLOW_SIGNUP: 'true',
    };
    expect(readServeSettings(['--port', '5000'], env)).toMatchObject({
      port: 5000,
      idleTimeout: 2000,
      allowSignup: true,
    });
    expect(readServeSettings(['--help'], {})).toBeNull();
  });

  it('knows which hosts browsers treat as secure over plain http', () => {
    for (const host of ['localhost', '127.0.0.1', '127.8.9.1', '::1', '[::1]'])
      expect(isLoopback(host)).toBe(true);
    for (const host of ['0.0.0.0', '192.168.1.2', 'example.com', '::'])
      expect(isLoopback(host)).toBe(false);
  });

  it('reads a Host header (any port) with the same loopback check', () => {
    for (const host of ['localhost:3000', 'LOCALHOST', '127.0.0.1:8080', '[::1]:3000'])
      expect(isLoopback(host)).toBe(true);
    for (const host of ['evil.example:3000', 'localhost.evil.example', '127.0.0.1.nip.io:80'])
      expect(isLoopback(host)).toBe(false);
  });

  it('believes X-Forwarded-For only from a trusted proxy', () => {
    const req = (peer: string, forwarded?: string) =>
      ({
        socket: { remoteAddress: peer } as Socket,
        headers: { 'x-forwarded-for': forwarded },
      }) as unknown as IncomingMessage;
    const trusted = new Set(['10.0.0.1', '10.0.0.2']);
    expect(clientIp(req('::ffff:203.0.113.9', '1.2.3.4'), trusted)).toBe('203.0.113.9');
    expect(clientIp(req('10.0.0.1', '198.51.100.7'), trusted)).toBe('198.51.100.7');
    expect(clientIp(req('10.0.0.1', '6.6.6.6, 198.51.100.7, 10.0.0.2'), trusted)).toBe(
      '198.51.100.7',
    );
    expect(clientIp(req('10.0.0.1', 'garbage'), trusted)).toBe('10.0.0.1');
    expect(clientIp(req('10.0.0.1'), trusted)).toBe('10.0.0.1');
  });
});
