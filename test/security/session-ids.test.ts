/** Checklist A (items 1-6): session ID generation and fixation, against a running server. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CSRF_COOKIE,
  loggedIn,
  newAccount,
  SESSION,
  type SecurityServer,
  sessionRow,
  sleep,
  startServer,
  userRow,
} from './support.js';

let server: SecurityServer;
beforeAll(async () => {
  // A short re-authentication window, so item 3 can re-authenticate with the password.
  server = await startServer({ args: ['--reauth-window', '1s'] });
});
afterAll(() => server?.stop());

function decodeBase64url(value: string): Buffer {
  expect(value, 'token is base64url').toMatch(/^[A-Za-z0-9_-]+$/);
  return Buffer.from(value, 'base64url');
}

function commonPrefix(values: readonly string[]): string {
  let prefix = values[0] ?? '';
  for (const value of values) {
    while (!value.startsWith(prefix)) prefix = prefix.slice(0, -1);
  }
  return prefix;
}

describe('A. session ID generation and fixation', () => {
  it('1: 1,000 logins give 1,000 unique IDs of >= 32 random bytes with no common prefix', async () => {
    const { username, password } = await newAccount(server, 'many');
    const tokens: string[] = [];
    let started = 0;
    const workers = Array.from({ length: 4 }, async () => {
      while (started < 1000) {
        started++;
        const res = await server.browser().loginApi(username, password);
        expect(res.status, res.body).toBe(200);
        const value = res.cookie(SESSION)?.value;
        expect(value).toBeTruthy();
        tokens.push(value as string);
      }
    });
    await Promise.all(workers);
    expect(tokens).toHaveLength(1000);
    expect(new Set(tokens).size).toBe(1000);
    for (const token of tokens) {
      // 256 bits in the checklist; >= 128 bits is the hard floor.
      expect(decodeBase64url(token).length).toBeGreaterThanOrEqual(32);
    }
    expect(commonPrefix(tokens)).toBe('');
    // No position is fixed: every character position takes several values across 1,000 IDs.
    const length = Math.min(...tokens.map((t) => t.length));
    for (let i = 0; i < length; i++) {
      expect(new Set(tokens.map((t) => t[i])).size, `position ${i}`).toBeGreaterThan(1);
    }
    // Bits are balanced: about half of all bits are 1 (random, not counters or timestamps).
    let ones = 0;
    let bits = 0;
    for (const token of tokens) {
      for (const byte of decodeBase64url(token).subarray(0, 32)) {
        for (let b = 0; b < 8; b++) ones += (byte >> b) & 1;
        bits += 8;
      }
    }
    expect(ones / bits).toBeGreaterThan(0.48);
    expect(ones / bits).toBeLessThan(0.52);
  }, 180_000);

  it('2: the ID carries no meaning: no username, user id or timestamp in any decoding', async () => {
    const { username, password } = await newAccount(server, 'meaning');
    const userId = String(userRow(server, username)?.id);
    expect(userId).not.toBe('undefined');
    for (let i = 0; i < 20; i++) {
      const before = Date.now();
      const browser = server.browser();
      await browser.login(username, password);
      const after = Date.now();
      const token = browser.session as string;
      const bytes = decodeBase64url(token);
      const decodings = [
        token,
        bytes.toString('utf8'),
        bytes.toString('latin1'),
        bytes.toString('hex'),
        Buffer.from(token, 'base64').toString('latin1'),
        /^[0-9a-f]+$/i.test(token) ? Buffer.from(token, 'hex').toString('latin1') : '',
      ];
      for (const text of decodings) {
        expect(text.toLowerCase()).not.toContain(username.toLowerCase());
        expect(text.toLowerCase()).not.toContain(userId.toLowerCase());
        expect(text.toLowerCase()).not.toContain(userId.replaceAll('-', '').toLowerCase());
        // Decimal timestamps (seconds and milliseconds, leading digits that do not change).
        expect(text).not.toContain(String(Math.floor(before / 1000)).slice(0, 7));
        expect(text).not.toContain(String(before).slice(0, 8));
      }
      expect(() => JSON.parse(bytes.toString('utf8'))).toThrow();
      // Binary timestamps: the slow-changing high bytes of the time in s and ms, both byte orders.
      const hex = bytes.toString('hex');
      for (const time of [before, after]) {
        const seconds = Buffer.alloc(4);
        seconds.writeUInt32BE(Math.floor(time / 1000));
        const millis = Buffer.alloc(8);
        millis.writeBigUInt64BE(BigInt(time));
        const needles = [
          seconds.subarray(0, 3),
          Buffer.from(seconds.subarray(1)).reverse(),
          millis.subarray(2, 6),
          Buffer.from(millis.subarray(2, 6)).reverse(),
        ];
        for (const needle of needles) expect(hex).not.toContain(needle.toString('hex'));
      }
      // The user id's bytes (a UUID) are not in the token either.
      const uuidHex = userId.replaceAll('-', '').toLowerCase();
      if (/^[0-9a-f]{32}$/.test(uuidHex)) expect(hex).not.toContain(uuidHex.slice(0, 8));
    }
  });

  it('3: a new ID on login and on re-authentication; the old one is terminated', async () => {
    const { browser, username, password } = await loggedIn(server);
    const first = browser.session as string;
    expect((await browser.me()).status).toBe(200);

    // Re-authentication over the API with the old cookie still in the jar.
    const again = await browser.loginApi(username, password);
    expect(again.status).toBe(200);
    const second = again.cookie(SESSION)?.value;
    expect(second).toBeTruthy();
    expect(second).not.toBe(first);
    expect((await browser.me({ cookie: `${SESSION}=${first}` })).status).toBe(401);
    expect((await browser.me()).status).toBe(200);

    // The HTML form: the pre-login state is the __Host-csrf cookie plus the session in the jar.
    const form = await browser.loginForm(username, password);
    expect(form.status, form.body).toBe(303);
    const third = form.cookie(SESSION)?.value;
    expect(third).toBeTruthy();
    expect(third).not.toBe(second);
    expect(third).not.toBe(browser.jar.get(CSRF_COOKIE));
    expect((await browser.me({ cookie: `${SESSION}=${second}` })).status).toBe(401);
    expect((await browser.me()).status).toBe(200);

    // Re-authentication with the current password (outside the 1 s window) renews the ID.
    await sleep(1500);
    const reauth = await browser.postJson('/api/sessions/revoke-others', {
      currentPassword: password,
    });
    expect(reauth.status, reauth.body).toBe(204);
    const fourth = reauth.cookie(SESSION)?.value;
    expect(fourth, 'a new session cookie after re-authentication').toBeTruthy();
    expect(fourth).not.toBe(third);
    expect((await browser.me({ cookie: `${SESSION}=${third}` })).status).toBe(401);
    expect((await browser.me()).status).toBe(200);

    // The pre-login binding cookie is no session.
    const fresh = server.browser();
    const loginPage = await fresh.page('/login');
    expect(loginPage.status).toBe(200);
    const preLogin = fresh.jar.get(CSRF_COOKIE);
    expect(preLogin, 'GET /login sets __Host-csrf').toBeTruthy();
    expect((await fresh.me({ cookie: `${SESSION}=${preLogin}` })).status).toBe(401);
  });

  it('4: a planted, well-formed ID is never accepted: login issues a different one', async () => {
    const { username, password } = await newAccount(server);
    for (const via of ['api', 'form'] as const) {
      const planted = randomBytes(32).toString('base64url');
      const browser = server.browser();
      browser.jar.set(SESSION, planted);
      const before = await browser.me({ keepJar: true });
      expect(before.status).toBe(401);
      const res =
        via === 'api'
          ? await browser.loginApi(username, password)
          : await browser.loginForm(username, password);
      expect([200, 303]).toContain(res.status);
      const issued = res.cookie(SESSION)?.value;
      expect(issued, `${via}: a session cookie is issued`).toBeTruthy();
      expect(issued).not.toBe(planted);
      expect((await browser.me({ cookie: `${SESSION}=${planted}` })).status).toBe(401);
      expect((await browser.me({ cookie: `${SESSION}=${issued}` })).status).toBe(200);
    }
  });

  it('5: tokens only in the cookie: ?sid=, body fields and Authorization get 401 and are never echoed', async () => {
    const { browser } = await loggedIn(server);
    const token = browser.session as string;
    const attempts = [
      () => browser.me({ cookie: null, headers: { authorization: `Bearer ${token}` } }),
      () => browser.me({ cookie: null, headers: { authorization: `Session ${token}` } }),
      () => browser.request('GET', `/api/me?sid=${token}`, { cookie: null }),
      () => browser.request('GET', `/api/me?${SESSION}=${token}`, { cookie: null }),
      () => browser.request('GET', `/api/me?session=${token}&token=${token}`, { cookie: null }),
      () => browser.request('GET', `/api/sessions?sid=${token}`, { cookie: null }),
      () =>
        browser.request('DELETE', '/api/sessions/none', {
          cookie: null,
          json: { sid: token, session: token, [SESSION]: token },
        }),
      () =>
        browser.postJson(
          '/api/sessions/revoke-others',
          { sid: token, session: token, [SESSION]: token },
          { cookie: null },
        ),
    ];
    for (const attempt of attempts) {
      const res = await attempt();
      expect(res.status, res.body).toBe(401);
      expect(res.everything()).not.toContain(token);
    }
    // Pages: the redirect to the login page must not carry the token either.
    for (const path of [`/dashboard?sid=${token}`, `/profile?${SESSION}=${token}`]) {
      const res = await browser.page(path, { cookie: null });
      expect(res.status).toBe(303);
      expect(res.headers.get('location') ?? '').not.toContain(token);
      expect(res.everything()).not.toContain(token);
    }
    // A logout carrying the token only in its body ends nothing.
    await browser.postJson('/api/logout', { sid: token, [SESSION]: token }, { cookie: null });
    expect((await browser.me()).status).toBe(200);
    // The token never appears in a redirect or a page after login either.
    const account = await newAccount(server);
    const form = await server.browser().loginForm(account.username, account.password);
    expect(form.status).toBe(303);
    const issued = form.cookie(SESSION)?.value as string;
    expect(form.headers.get('location') ?? '').not.toContain(issued);
    expect(form.body).not.toContain(issued);
  });

  it('6: a pre-login session is destroyed at login, not promoted', async () => {
    const first = await loggedIn(server);
    const other = await newAccount(server);
    const before = await first.browser.whoami();
    const oldId = before?.session.id as string;
    expect(sessionRow(server, oldId), 'the session is in the store').toBeDefined();
    const oldToken = first.browser.session as string;

    // Same browser logs in as another account: the old record is gone, not re-labelled.
    const res = await first.browser.loginApi(other.username, other.password);
    expect(res.status).toBe(200);
    expect(sessionRow(server, oldId), 'old session record deleted').toBeUndefined();
    expect((await first.browser.me({ cookie: `${SESSION}=${oldToken}` })).status).toBe(401);
    const after = await first.browser.whoami();
    expect(after?.session.id).not.toBe(oldId);
    expect(after?.user.username).toBe(other.username);

    // Same account through the HTML form.
    const again = await loggedIn(server);
    const formerId = (await again.browser.whoami())?.session.id as string;
    const form = await again.browser.loginForm(again.username, again.password);
    expect(form.status).toBe(303);
    expect(sessionRow(server, formerId)).toBeUndefined();
  });
});
