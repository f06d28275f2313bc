import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Latchkey, MemoryStore } from 'latchkey';
import { authenticate } from 'latchkey/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { movableClock } from '../helpers/clock.js';

let server: Server;
let base: string;
const clock = movableClock();
const auth = new Latchkey({
  store: new MemoryStore(),
  idleTimeout: '1s',
  absoluteTimeout: '1h',
  clock: clock.now,
});

beforeAll(async () => {
  server = createServer(async (req, res) => {
    if (req.url === '/login' && req.method === 'POST') {
      const { setCookie } = await auth.startSession(
        'user-7',
        { user: { name: 'Ada' } },
        req.headers.cookie ?? null,
      );
      res.writeHead(204, { 'set-cookie': [...setCookie] }).end();
      return;
    }
    res.setHeader('set-cookie', ['theme=dark; Path=/']); // the adapter must keep cookies set before it
    const result = await authenticate(auth, req, res);
    if (!result) return;
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify({ user: result.user }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function login(): Promise<string> {
  const response = await fetch(`${base}/login`, { method: 'POST' });
  const setCookie = response.headers.getSetCookie();
  expect(setCookie).toHaveLength(1);
  return (setCookie[0] as string).split(';')[0] as string;
}

describe('latchkey/node over real HTTP', () => {
  it('serves the protected resource to a valid session cookie', async () => {
    const cookie = await login();
    const response = await fetch(`${base}/me`, { headers: { cookie } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ user: { name: 'Ada' } });
  });

  it('redirects a browser navigation without a session to login with next', async () => {
    const response = await fetch(`${base}/profile`, {
      redirect: 'manual',
      headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' },
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/login?next=%2Fprofile');
  });

  it('answers an API call with an expired session 401 JSON and clears the cookie', async () => {
    const cookie = await login();
    clock.advance(1001);
    const response = await fetch(`${base}/me`, { headers: { cookie, accept: 'application/json' } });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'unauthenticated' });
    const [theme, cleared] = response.headers.getSetCookie();
    expect(theme).toBe('theme=dark; Path=/');
    expect(cleared).toMatch(/^__Host-session=; Max-Age=0/);
  });

  it('a malformed cookie header is no session, never a 500', async () => {
    const response = await fetch(`${base}/me`, {
      headers: {
        cookie: `__Host-session=${'%'.repeat(300)}; __Host-session=x`,
        accept: 'application/json',
      },
    });
    expect(response.status).toBe(401);
    expect(await response.text()).not.toContain('%%%');
  });
});
