/** Issue 12, items 7-9: hostile cookies, usernames and redirect targets against the real app. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CsrfTokens, Latchkey, MemoryStore } from '../../src/index.js';
import { createApp } from '../../src/server/app.js';
import { send } from '../../src/server/http.js';

const PASSWORD = 'correct horse battery';
const NAVIGATE = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

let url: string;
let auth: Latchkey;
let server: Server;

beforeAll(async () => {
  const store = new MemoryStore();
  auth = new Latchkey({ store, users: store, remember: { store } });
  server = createServer(
    createApp({
      latchkey: auth,
      store,
      allowSignup: true,
      trustedProxies: new Set(),
      csrf: new CsrfTokens('a test secret of at least thirty-two bytes'),
      https: false,
      loopbackOnly: true,
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await auth.createUser('ada', PASSWORD);
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function cookiePairs(response: Response): string[] {
  return response.headers.getSetCookie().map((line) => line.split(';')[0] as string);
}

async function apiLogin(remember = false): Promise<{ session: string; remember?: string }> {
  const response = await fetch(`${url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: url },
    body: JSON.stringify({ username: 'ada', password: PASSWORD, remember }),
  });
  expect(response.status).toBe(200);
  const pairs = cookiePairs(response);
  return {
    session: pairs.find((pair) => pair.startsWith('__Host-session=')) as string,
    remember: pairs.find((pair) => pair.startsWith('__Host-remember=')),
  };
}

function me(cookie: string): Promise<Response> {
  return fetch(`${url}/api/me`, { headers: { cookie, accept: 'application/json' } });
}

describe('item 7: cookie parsing', () => {
  it('12.7: an oversize Cookie header (a cookie bomb) is no session and clears no cookie, remember-me included', async () => {
    const { session, remember } = await apiLogin(true);
    const bomb = Array.from({ length: 40 }, (_, i) => `bomb${i}=${'x'.repeat(250)}`).join('; ');
    for (const path of ['/api/me', '/dashboard', '/auth/verify']) {
      const response = await fetch(`${url}${path}`, {
        redirect: 'manual',
        headers: { cookie: `${session}; ${remember}; ${bomb}`, ...NAVIGATE },
      });
      expect(response.status, path).not.toBe(200);
      expect(response.headers.getSetCookie(), path).toEqual([]);
    }
    // Both cookies still work once the bomb is gone.
    expect((await me(session)).status).toBe(200);
    const restored = await me(remember as string);
    expect(restored.status).toBe(200);
    expect(cookiePairs(restored).some((pair) => /^__Host-session=[\w-]{43}$/.test(pair))).toBe(
      true,
    );
  });

  it('12.7: a cookie name is matched after trimming spaces and tabs only (U+00A0 is not trimmed)', async () => {
    const { session } = await apiLogin();
    const value = session.slice('__Host-session='.length);
    expect((await me(` \t__Host-session=${value}\t `)).status).toBe(200);
    // Node reads header bytes as latin1: byte 0xA0 arrives as U+00A0, which `trim()` drops.
    const response = await me(`\u00a0__Host-session=${value}`);
    expect(response.status).toBe(401);
  });
});

describe('item 8: usernames', () => {
  it('12.8: sign-up refuses admin\\u200b and a lone surrogate; a fullwidth twin of a taken name is taken', async () => {
    for (const [username, error] of [
      ['ada\u200b', 'invalid_username'],
      ['ad\u00ada', 'invalid_username'],
      ['ada\ud800', 'invalid_username'],
      ['ＡＤＡ', 'username_taken'],
    ] as const) {
      const response = await fetch(`${url}/api/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: url },
        body: JSON.stringify({ username, password: 'another fine passphrase' }),
      });
      expect(response.status, JSON.stringify(username)).toBeGreaterThanOrEqual(400);
      expect(await response.json(), JSON.stringify(username)).toMatchObject({ error });
      expect(
        cookiePairs(response).some((pair) => pair.startsWith('__Host-session=')),
        username,
      ).toBe(false);
    }
  });

  it('12.8: /auth/verify answers 200 (never 500) for an account stored with a lone surrogate', async () => {
    // An account from before lone surrogates were refused: its session snapshot holds one.
    const { token } = await auth.create('legacy-id', {
      user: { id: 'legacy-id', username: 'eve\ud800' },
    });
    const response = await fetch(`${url}/auth/verify`, {
      headers: { cookie: `__Host-session=${token}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-auth-user-id')).toBe('legacy-id');
    expect(response.headers.get('x-auth-user')).toBe('eve%EF%BF%BD');
  });
});

describe('item 9: redirect targets', () => {
  async function formLogin(next: string): Promise<Response> {
    const page = await fetch(`${url}/login?next=${next}`, { headers: NAVIGATE });
    const html = await page.text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
    const shownNext = /name="next" value="([^"]*)"/.exec(html)?.[1] ?? '';
    const preLogin = cookiePairs(page).find((pair) => pair.startsWith('__Host-csrf=')) as string;
    return fetch(`${url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: url,
        cookie: preLogin,
        ...NAVIGATE,
      },
      body: new URLSearchParams({
        username: 'ada',
        password: PASSWORD,
        csrf,
        next: shownNext,
      }).toString(),
    });
  }

  it('12.9: /login?next=/%C4%80 logs in with a 303 to the percent-encoded path and sends the cookie', async () => {
    for (const [next, location] of [
      ['/%C4%80', '/%C4%80'],
      ['/caf%C3%A9?q=%E2%82%AC%20x', '/caf%C3%A9?q=%E2%82%AC%20x'],
      ['/%F0%9F%A6%8A', '/%F0%9F%A6%8A'],
    ] as const) {
      const response = await formLogin(encodeURIComponent(decodeURIComponent(next)));
      expect(response.status, next).toBe(303);
      expect(response.headers.get('location'), next).toBe(location);
      const session = cookiePairs(response).find((pair) => pair.startsWith('__Host-session='));
      expect(session, next).toMatch(/^__Host-session=[\w-]{43}$/);
      expect((await me(session as string)).status).toBe(200);
    }
  });

  it('12.9: a reply whose header Node refuses still sends its Set-Cookie (a 500, never a lost session)', async () => {
    const probe = createServer((_req, res) =>
      send(res, {
        status: 303,
        headers: { location: '/\u0100' },
        setCookie: ['__Host-session=t; Path=/'],
      }),
    );
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/`, { redirect: 'manual' });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    expect(response.status).toBe(500);
    expect(response.headers.getSetCookie()).toEqual(['__Host-session=t; Path=/']);
    expect(response.headers.get('cache-control')).toBe('no-store');
  });
});
