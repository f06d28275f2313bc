/** Checklist B (items 7-13): cookie attributes, on every response that sets one. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CSRF_COOKIE,
  csrfFrom,
  expectHostCookie,
  isClearing,
  newAccount,
  REMEMBER,
  type Res,
  SESSION,
  type SecurityServer,
  type SetCookie,
  sleep,
  startServer,
  strongPassword,
  THIRTY_DAYS,
  uniqueName,
} from './support.js';

let server: SecurityServer;
/** Every response of the tour below, labelled, with whether its request carried a session. */
const seen: Array<{ label: string; res: Res; usedSession: boolean }> = [];
/** Every session token issued during the tour. */
const tokens: string[] = [];

beforeAll(async () => {
  server = await startServer({ args: ['--reauth-window', '1s'] });
  const record = (label: string, res: Res, usedSession: boolean) => {
    seen.push({ label, res, usedSession });
    const issued = res.cookie(SESSION)?.value;
    if (issued) tokens.push(issued);
    return res;
  };

  // Sign-up (API and form), login (API and form, with and without remember-me).
  const account = await newAccount(server, 'cookie');
  const api = server.browser();
  record(
    'POST /api/signup',
    await api.postJson('/api/signup', { username: uniqueName(), password: strongPassword() }),
    false,
  );
  const signupForm = server.browser();
  const signupPage = record('GET /signup', await signupForm.page('/signup'), false);
  record(
    'POST /signup',
    await signupForm.postForm('/signup', {
      username: uniqueName(),
      password: strongPassword(),
      csrf: csrfFrom(signupPage.body, '/signup'),
    }),
    false,
  );
  const apiLogin = server.browser();
  record('POST /api/login', await apiLogin.loginApi(account.username, account.password), false);
  const remembered = server.browser();
  record(
    'POST /api/login remember',
    await remembered.loginApi(account.username, account.password, true),
    false,
  );
  const form = server.browser();
  record('GET /login', await form.page('/login'), false);
  record(
    'POST /login remember',
    await form.postForm('/login', {
      username: account.username,
      password: account.password,
      remember: 'on',
      csrf: csrfFrom(seen.at(-1)?.res.body ?? '', '/login'),
    }),
    false,
  );

  // Pages and API calls with a session.
  for (const path of ['/dashboard', '/profile', '/sessions', '/password']) {
    record(`GET ${path}`, await form.page(path), true);
  }
  record('GET /api/me', await apiLogin.me(), true);
  record('GET /api/sessions', await apiLogin.request('GET', '/api/sessions'), true);

  // A session restored from the remember-me cookie alone.
  const restoring = server.browser();
  restoring.jar.set(REMEMBER, remembered.remember as string);
  record('GET /api/me via remember', await restoring.me(), false);

  // Re-authentication rotates the session.
  await sleep(1200);
  record(
    'POST /api/sessions/revoke-others reauth',
    await apiLogin.postJson('/api/sessions/revoke-others', { currentPassword: account.password }),
    true,
  );

  // A dead session cookie, a logout, an API logout.
  const stale = server.browser();
  stale.jar.set(SESSION, 'A'.repeat(43));
  record('GET /api/me stale', await stale.me(), true);
  record(
    'GET /dashboard stale',
    await stale.page('/dashboard', { cookie: `${SESSION}=${'A'.repeat(43)}` }),
    true,
  );
  const logoutCsrf = await form.csrf('/dashboard', '/logout');
  record('POST /logout', await form.postForm('/logout', { csrf: logoutCsrf }), true);
  record('POST /api/logout', await apiLogin.request('POST', '/api/logout'), true);
}, 120_000);
afterAll(() => server?.stop());

function setCookies(name?: string): Array<{ label: string; cookie: SetCookie }> {
  return seen.flatMap(({ label, res }) =>
    res.setCookies
      .filter((cookie) => name === undefined || cookie.name === name)
      .map((cookie) => ({ label, cookie })),
  );
}

describe('B. cookie attributes', () => {
  it('the tour issued session, remember-me and pre-login CSRF cookies', () => {
    const issued = (name: string) =>
      setCookies(name).filter(({ cookie }) => cookie.value !== '' && !isClearing(cookie));
    expect(issued(SESSION).length).toBeGreaterThanOrEqual(6);
    expect(issued(REMEMBER).length).toBeGreaterThanOrEqual(3);
    expect(issued(CSRF_COOKIE).length).toBeGreaterThanOrEqual(2);
    const labels = issued(SESSION).map(({ label }) => label);
    for (const label of [
      'POST /api/signup',
      'POST /signup',
      'POST /api/login',
      'POST /login remember',
      'GET /api/me via remember',
      'POST /api/sessions/revoke-others reauth',
    ]) {
      expect(labels, `${label} sets a session cookie`).toContain(label);
    }
  });

  it('7: session cookie is __Host- with Secure, Path=/ and no Domain (and so are all our cookies)', () => {
    const all = setCookies();
    expect(all.length).toBeGreaterThan(0);
    for (const { label, cookie } of all) {
      expect(cookie.name.startsWith('__Host-'), `${label}: ${cookie.raw}`).toBe(true);
      expect(cookie.attributes.has('secure'), `${label}: ${cookie.raw}`).toBe(true);
      expect(cookie.attributes.get('path'), `${label}: ${cookie.raw}`).toBe('/');
      expect(cookie.attributes.has('domain'), `${label}: ${cookie.raw}`).toBe(false);
    }
    expect(setCookies(SESSION).length).toBeGreaterThan(0);
  });

  it('8: Secure on every session Set-Cookie, issuing and clearing alike', () => {
    const session = setCookies(SESSION);
    expect(session.some(({ cookie }) => isClearing(cookie))).toBe(true);
    for (const { label, cookie } of session) {
      expect(cookie.attributes.has('secure'), `${label}: ${cookie.raw}`).toBe(true);
    }
  });

  it('9: HttpOnly on every cookie; a session token never appears in a response body', () => {
    for (const { label, cookie } of setCookies()) {
      expect(cookie.attributes.has('httponly'), `${label}: ${cookie.raw}`).toBe(true);
    }
    expect(tokens.length).toBeGreaterThan(0);
    for (const { label, res } of seen) {
      for (const token of tokens) expect(res.body, `${label} body`).not.toContain(token);
      for (const remember of setCookies(REMEMBER)) {
        if (remember.cookie.value) {
          expect(res.body, `${label} body`).not.toContain(remember.cookie.value);
        }
      }
    }
  });

  it('10: SameSite=Strict on every cookie', () => {
    for (const { label, cookie } of setCookies()) {
      expect(cookie.attributes.get('samesite')?.toLowerCase(), `${label}: ${cookie.raw}`).toBe(
        'strict',
      );
    }
  });

  it('11: the plain session cookie has no Max-Age/Expires; only remember-me persists (<= 30 days)', () => {
    const issued = setCookies(SESSION).filter(({ cookie }) => cookie.value !== '');
    expect(issued.length).toBeGreaterThan(0);
    for (const { label, cookie } of issued) {
      expect(cookie.attributes.has('max-age'), `${label}: ${cookie.raw}`).toBe(false);
      expect(cookie.attributes.has('expires'), `${label}: ${cookie.raw}`).toBe(false);
    }
    const remembered = setCookies(REMEMBER).filter(({ cookie }) => cookie.value !== '');
    expect(remembered.length).toBeGreaterThan(0);
    for (const { label, cookie } of remembered) {
      expectHostCookie(cookie);
      const maxAge = Number(cookie.attributes.get('max-age'));
      expect(maxAge, `${label}: ${cookie.raw}`).toBeGreaterThan(0);
      expect(maxAge, `${label}: ${cookie.raw}`).toBeLessThanOrEqual(THIRTY_DAYS);
      const expires = cookie.attributes.get('expires');
      if (expires !== undefined) {
        expect(Date.parse(expires)).toBeLessThanOrEqual(Date.now() + THIRTY_DAYS * 1000);
      }
    }
    // The pre-login CSRF cookie does not outlive the browser session by more than a day either.
    for (const { label, cookie } of setCookies(CSRF_COOKIE)) {
      const maxAge = cookie.attributes.get('max-age');
      if (maxAge !== undefined) expect(Number(maxAge), label).toBeLessThanOrEqual(86_400);
    }
  });

  it('12: cookie name + value <= 4096 bytes', () => {
    for (const { label, cookie } of setCookies()) {
      const size = Buffer.byteLength(`${cookie.name}=${cookie.value}`);
      expect(size, `${label}: ${cookie.name}`).toBeLessThanOrEqual(4096);
    }
  });

  it('13: responses that set or use a session carry Cache-Control: no-store', () => {
    const relevant = seen.filter(
      ({ res, usedSession }) =>
        usedSession || res.setCookies.some((c) => c.name === SESSION || c.name === REMEMBER),
    );
    expect(relevant.length).toBeGreaterThanOrEqual(15);
    for (const { label, res } of relevant) {
      const directives = (res.headers.get('cache-control') ?? '')
        .split(',')
        .map((d) => d.trim().toLowerCase());
      expect(directives, `${label}: ${res.headers.get('cache-control')}`).toContain('no-store');
    }
  });
});
