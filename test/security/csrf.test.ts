/** Checklist G (items 37-40): synchronizer tokens, Fetch Metadata, Origin, safe methods. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Browser,
  CSRF_COOKIE,
  csrfFrom,
  newAccount,
  type Res,
  rawRequest,
  type SecurityServer,
  startServer,
  strongPassword,
  uniqueName,
  userRow,
  varyOf,
} from './support.js';

let server: SecurityServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.stop());

/** A logged-in browser (HTML login) that also kept the pre-login token it had before login. */
async function formUser(): Promise<{
  browser: Browser;
  username: string;
  password: string;
  preLogin: string;
}> {
  const { username, password } = await newAccount(server);
  const browser = server.browser();
  const loginPage = await browser.page('/login');
  const preLogin = csrfFrom(loginPage.body, '/login');
  const res = await browser.postForm('/login', { username, password, csrf: preLogin });
  expect(res.status, res.body).toBe(303);
  return { browser, username, password, preLogin };
}

async function expectAlive(browser: Browser, label: string): Promise<void> {
  expect((await browser.me()).status, `${label}: session still valid`).toBe(200);
}

describe('G. CSRF and Fetch Metadata', () => {
  it("37: every HTML form action needs the session-bound token: missing, empty, other session's, pre-login → 403", async () => {
    const a = await formUser();
    const b = await formUser();
    const valid = await a.browser.csrf();
    const other = await b.browser.csrf();
    expect(other).not.toBe(valid);
    expect(a.preLogin).not.toBe(valid);
    const idB = (await b.browser.whoami())?.session.id as string;
    const actions: Array<[string, Record<string, string>]> = [
      ['/logout', {}],
      ['/logout-everywhere', {}],
      ['/sessions/revoke-others', {}],
      ['/sessions/revoke', { id: idB }],
      ['/password', { new_password: strongPassword(), sign_out_others: 'on' }],
      ['/account/disable', {}],
    ];
    const bad: Array<[string, Record<string, string>]> = [
      ['missing', {}],
      ['empty', { csrf: '' }],
      ["other session's", { csrf: other }],
      ['pre-login', { csrf: a.preLogin }],
      ['forged', { csrf: 'A'.repeat(43) }],
      ['sent twice', { csrf: valid }],
    ];
    for (const [path, fields] of actions) {
      for (const [label, token] of bad) {
        const res =
          label === 'sent twice'
            ? await a.browser.request('POST', path, {
                body: `${new URLSearchParams(fields)}&csrf=${valid}&csrf=${other}`,
                headers: {
                  'content-type': 'application/x-www-form-urlencoded',
                  accept: 'text/html',
                },
              })
            : await a.browser.postForm(path, { ...fields, ...token });
        expect(res.status, `${path} with ${label} token`).toBe(403);
        expect(res.headers.get('location') ?? '').not.toContain(valid);
      }
    }
    await expectAlive(a.browser, 'a');
    await expectAlive(b.browser, 'b');
    expect(userRow(server, a.username)?.disabled).toBe(0);
    expect((await server.browser().loginApi(a.username, a.password)).status).toBe(200);

    // The valid token passes.
    const ok = await a.browser.postForm('/sessions/revoke-others', { csrf: valid });
    expect(ok.status, ok.body).toBe(303);
  });

  it('37: the token is bound to the session: after a new login the old token is refused', async () => {
    const a = await formUser();
    const before = await a.browser.csrf();
    const again = await a.browser.loginApi(a.username, a.password);
    expect(again.status).toBe(200);
    const stale = await a.browser.postForm('/sessions/revoke-others', { csrf: before });
    expect(stale.status).toBe(403);
    const fresh = await a.browser.csrf();
    expect(fresh).not.toBe(before);
    expect((await a.browser.postForm('/sessions/revoke-others', { csrf: fresh })).status).toBe(303);
  });

  it('37: login and sign-up forms need the pre-login token bound to the __Host-csrf cookie', async () => {
    const { username, password } = await newAccount(server);
    for (const path of ['/login', '/signup']) {
      const fields = () =>
        path === '/login' ? { username, password } : { username: uniqueName(), password };
      const mine = server.browser();
      const page = await mine.page(path);
      expect(page.status).toBe(200);
      expect(mine.jar.get(CSRF_COOKIE), `${path} sets __Host-csrf`).toBeTruthy();
      const token = csrfFrom(page.body, path);
      const theirs = server.browser();
      const theirToken = csrfFrom((await theirs.page(path)).body, path);

      expect((await mine.postForm(path, fields())).status, `${path} missing`).toBe(403);
      expect((await mine.postForm(path, { ...fields(), csrf: '' })).status, `${path} empty`).toBe(
        403,
      );
      expect(
        (await mine.postForm(path, { ...fields(), csrf: theirToken })).status,
        `${path} with another browser's token`,
      ).toBe(403);
      const noCookie = await mine.postForm(path, { ...fields(), csrf: token }, { cookie: null });
      expect(noCookie.status, `${path} without the __Host-csrf cookie`).toBe(403);
      expect(mine.session, 'no session from refused attempts').toBeUndefined();
      const ok = await mine.postForm(path, { ...fields(), csrf: token });
      expect(ok.status, `${path} valid: ${ok.body.slice(0, 200)}`).toBe(303);
    }
  });

  it('37: tokens never appear in URLs (links, form actions, redirects)', async () => {
    const a = await formUser();
    const token = await a.browser.csrf();
    for (const path of ['/dashboard', '/profile', '/sessions', '/password']) {
      const res = await a.browser.page(path);
      expect(res.status).toBe(200);
      const urls = [...res.body.matchAll(/(?:href|action|src)="([^"]*)"/g)].map((m) => m[1]);
      for (const url of urls) {
        expect(url, path).not.toContain(token);
        expect(url, path).not.toMatch(/csrf/i);
      }
      for (const form of res.body.match(/<form\b[^>]*>/gi) ?? []) {
        expect(form, `${path}: forms post`).toMatch(/method="post"/i);
      }
    }
    const login = await server.browser().page('/login');
    for (const m of login.body.matchAll(/(?:href|action)="([^"]*)"/g)) {
      expect(m[1]).not.toMatch(/csrf/i);
    }
  });

  it('38: Sec-Fetch-Site other than same-origin is refused on unsafe methods, token or not', async () => {
    const a = await formUser();
    const valid = await a.browser.csrf();
    for (const site of ['cross-site', 'same-site', 'none']) {
      const html = await a.browser.postForm(
        '/sessions/revoke-others',
        { csrf: valid },
        { headers: { 'sec-fetch-site': site } },
      );
      expect(html.status, `HTML ${site}`).toBe(403);
      const api = await a.browser.postJson(
        '/api/sessions/revoke-others',
        {},
        { headers: { 'sec-fetch-site': site } },
      );
      expect(api.status, `API ${site}`).toBe(403);
      const logout = await a.browser.request('POST', '/api/logout', {
        headers: { 'sec-fetch-site': site },
      });
      expect(logout.status, `API logout ${site}`).toBe(403);
      const crossLogin = await server.browser().request('POST', '/api/login', {
        json: { username: a.username, password: a.password },
        headers: { 'sec-fetch-site': site },
      });
      expect(crossLogin.status, `login ${site}`).toBe(403);
      expect(crossLogin.cookie('__Host-session')?.value ?? '').toBe('');
    }
    await expectAlive(a.browser, 'a');
    const same = await a.browser.postForm(
      '/sessions/revoke-others',
      { csrf: valid },
      { headers: { 'sec-fetch-site': 'same-origin' } },
    );
    expect(same.status).toBe(303);
    const sameApi = await a.browser.postJson(
      '/api/sessions/revoke-others',
      {},
      { headers: { 'sec-fetch-site': 'same-origin' }, origin: null },
    );
    expect(sameApi.status).toBe(204);
  });

  it('38: responses carry Vary: Sec-Fetch-Site, Origin', async () => {
    const a = await formUser();
    const responses: Array<[string, Res]> = [
      ['GET /login', await server.browser().page('/login')],
      ['GET /dashboard', await a.browser.page('/dashboard')],
      ['GET /api/me', await a.browser.me()],
      [
        'POST 403',
        await a.browser.postJson(
          '/api/sessions/revoke-others',
          {},
          { origin: 'http://evil.example' },
        ),
      ],
      ['POST 204', await a.browser.postJson('/api/sessions/revoke-others', {})],
      ['POST /api/login 401', await server.browser().loginApi(uniqueName(), 'wrong-password')],
    ];
    for (const [label, res] of responses) {
      const vary = varyOf(res);
      expect(vary, `${label}: Vary ${res.headers.get('vary')}`).toContain('sec-fetch-site');
      expect(vary, `${label}: Vary ${res.headers.get('vary')}`).toContain('origin');
    }
  });

  it('39: without Sec-Fetch-Site, Origin (or Referer) must equal the server origin exactly', async () => {
    const a = await formUser();
    const valid = await a.browser.csrf();
    const { origin, port } = server;
    const badOrigins = [
      'null',
      `http://127.0.0.1:${port + 1}`,
      `http://127.0.0.1:${port}.evil.example`,
      `http://127.0.0.1.evil.example:${port}`,
      `https://127.0.0.1:${port}`,
      `http://localhost:${port}`,
      `${origin}/`,
      'http://127.0.0.1',
      `http://evil.example`,
      '',
    ];
    for (const bad of badOrigins) {
      const html = await a.browser.postForm(
        '/sessions/revoke-others',
        { csrf: valid },
        { origin: bad },
      );
      expect(html.status, `HTML Origin ${JSON.stringify(bad)}`).toBe(403);
      const api = await a.browser.postJson('/api/sessions/revoke-others', {}, { origin: bad });
      expect(api.status, `API Origin ${JSON.stringify(bad)}`).toBe(403);
      const login = await server.browser().request('POST', '/api/login', {
        json: { username: a.username, password: a.password },
        origin: bad,
      });
      expect(login.status, `login Origin ${JSON.stringify(bad)}`).toBe(403);
    }
    // None at all.
    const none = await a.browser.postJson('/api/sessions/revoke-others', {}, { origin: null });
    expect(none.status, 'no Origin, Referer or Sec-Fetch-Site').toBe(403);
    const noneHtml = await a.browser.postForm(
      '/sessions/revoke-others',
      { csrf: valid },
      {
        origin: null,
      },
    );
    expect(noneHtml.status).toBe(403);
    // Referer as the fallback: only the exact origin counts.
    for (const referer of [
      `http://127.0.0.1:${port + 1}/dashboard`,
      `http://127.0.0.1:${port}.evil.example/dashboard`,
      `http://evil.example/?${origin}`,
      `http://127.0.0.1:${port}@evil.example/dashboard`,
      'not a url',
    ]) {
      const res = await a.browser.postJson(
        '/api/sessions/revoke-others',
        {},
        {
          origin: null,
          headers: { referer },
        },
      );
      expect(res.status, `Referer ${referer}`).toBe(403);
    }
    await expectAlive(a.browser, 'a');
    const byReferer = await a.browser.postJson(
      '/api/sessions/revoke-others',
      {},
      {
        origin: null,
        headers: { referer: `${origin}/sessions` },
      },
    );
    expect(byReferer.status).toBe(204);
    const byOrigin = await a.browser.postForm('/sessions/revoke-others', { csrf: valid });
    expect(byOrigin.status).toBe(303);
  });

  it('39: an Origin that matches only a forged Host header (DNS rebinding) is refused', async () => {
    const a = await formUser();
    const forged = `evil.example:${server.port}`;
    const body = JSON.stringify({});
    const res = await rawRequest(
      server,
      [
        'POST /api/sessions/revoke-others HTTP/1.1',
        `Host: ${forged}`,
        `Origin: http://${forged}`,
        `Cookie: __Host-session=${a.browser.session}`,
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(body)}`,
        `X-Forwarded-For: ${a.browser.ip}`,
        'Connection: close',
        '',
        body,
      ].join('\r\n'),
    );
    expect(res.status, res.head).toBe(403);
    const login = JSON.stringify({ username: a.username, password: a.password });
    const loginRes = await rawRequest(
      server,
      [
        'POST /api/login HTTP/1.1',
        `Host: ${forged}`,
        `Origin: http://${forged}`,
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(login)}`,
        'Connection: close',
        '',
        login,
      ].join('\r\n'),
    );
    expect(loginRes.status, loginRes.head).toBe(403);
  });

  it('40: GET/HEAD never change state: GET /logout is 405 and the session stays valid', async () => {
    const a = await formUser();
    const b = server.browser();
    await b.login(a.username, a.password);
    const idB = (await b.whoami())?.session.id as string;
    for (const [method, path] of [
      ['GET', '/logout'],
      ['HEAD', '/logout'],
      ['GET', '/api/logout'],
      ['GET', '/logout-everywhere'],
      ['GET', '/api/logout-everywhere'],
      ['GET', `/sessions/revoke?id=${idB}`],
      ['GET', '/sessions/revoke-others'],
      ['GET', '/api/sessions/revoke-others'],
      ['GET', '/account/disable'],
      ['GET', '/api/account/disable'],
      ['HEAD', '/api/account/disable'],
      ['GET', '/api/password'],
    ] as const) {
      const res = await a.browser.request(method, path, { headers: { accept: 'text/html' } });
      expect(res.status, `${method} ${path}`).toBe(405);
    }
    // GET /password shows the form; query parameters change nothing.
    const newPassword = strongPassword();
    const page = await a.browser.page(`/password?new_password=${newPassword}&sign_out_others=on`);
    expect(page.status).toBe(200);
    await expectAlive(a.browser, 'a');
    await expectAlive(b, 'b');
    expect(userRow(server, a.username)?.disabled).toBe(0);
    expect((await server.browser().loginApi(a.username, newPassword)).status).toBe(401);
    expect((await server.browser().loginApi(a.username, a.password)).status).toBe(200);
  });

  it('40: JSON endpoints refuse text/plain (and other non-JSON) bodies with 415', async () => {
    const a = await formUser();
    const b = server.browser();
    await b.login(a.username, a.password);
    const idB = (await b.whoami())?.session.id as string;
    const newPassword = strongPassword();
    const bodies: Array<[string, string, string]> = [
      ['POST', '/api/login', JSON.stringify({ username: a.username, password: a.password })],
      [
        'POST',
        '/api/signup',
        JSON.stringify({ username: uniqueName(), password: strongPassword() }),
      ],
      ['POST', '/api/password', JSON.stringify({ newPassword, currentPassword: a.password })],
      ['POST', '/api/sessions/revoke-others', JSON.stringify({ currentPassword: a.password })],
      ['DELETE', `/api/sessions/${idB}`, JSON.stringify({ currentPassword: a.password })],
      ['POST', '/api/account/disable', JSON.stringify({ currentPassword: a.password })],
    ];
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      for (const [method, path, body] of bodies) {
        const res = await a.browser.request(method, path, {
          body,
          headers: { 'content-type': type, accept: 'application/json' },
        });
        expect(res.status, `${method} ${path} as ${type}`).toBe(415);
        expect(res.cookie('__Host-session')?.value ?? '').toBe('');
      }
    }
    await expectAlive(a.browser, 'a');
    await expectAlive(b, 'b');
    expect(userRow(server, a.username)?.disabled).toBe(0);
    expect((await server.browser().loginApi(a.username, newPassword)).status).toBe(401);
    // application/json with a charset parameter is fine.
    const ok = await server.browser().request('POST', '/api/login', {
      body: JSON.stringify({ username: a.username, password: a.password }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(ok.status).toBe(200);
  });
});
