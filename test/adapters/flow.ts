import { type Duration, MemoryStore, type SessionStore } from 'latchkey';
import { afterEach, expect, it } from 'vitest';
import { movableClock } from '../helpers/clock.js';

/** What every example app's `start()` gives back. */
export interface RunningExample {
  readonly url: string;
  close(): Promise<void>;
}

export type StartExample = (options: {
  port: number;
  idleTimeout: Duration;
  store?: SessionStore;
  /** The app's clock: the flow moves it past the idle timeout instead of sleeping. */
  clock: () => number;
}) => Promise<RunningExample>;

export const demoUser = { username: 'ada', password: 'correct horse battery staple' };

const PAGE = { accept: 'text/html', 'sec-fetch-mode': 'navigate' } as const;
const API = { accept: 'application/json' } as const;

/**
 * The seed flow over real HTTP against one example app: every adapter must pass the same tests,
 * because every adapter must answer exactly as the core says.
 */
export function seedFlowTests(start: StartExample, options: { outage?: boolean } = {}): void {
  const running: RunningExample[] = [];
  let clock = movableClock();
  afterEach(async () => {
    await Promise.all(running.splice(0).map((app) => app.close()));
    clock = movableClock();
  });
  async function boot(store?: SessionStore): Promise<string> {
    const app = await start({ port: 0, idleTimeout: '1s', store, clock: clock.now });
    running.push(app);
    return app.url;
  }

  it('login, idle expiry, login again, logout: the old cookie is refused', async () => {
    const url = await boot();
    const cookie = await login(url);
    expect((await get(url, '/api/me', cookie, API)).status).toBe(200);
    const page = await get(url, '/dashboard', cookie, PAGE);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Hello, ada');

    clock.advance(1001);
    const api = await get(url, '/api/me', cookie, API);
    expect(api.status).toBe(401);
    expect(await api.json()).toEqual({ error: 'unauthenticated' });
    expect(api.headers.get('content-type')).toBe('application/json');
    expect(api.headers.get('cache-control')).toBe('no-store');
    expect(api.headers.getSetCookie().join()).toMatch(/^__Host-session=; Max-Age=0/);
    const redirect = await get(url, '/dashboard', cookie, PAGE);
    expect(redirect.status).toBe(303);
    expect(redirect.headers.get('location')).toBe('/login?next=%2Fdashboard');

    const again = await login(url);
    expect(again).not.toBe(cookie);
    const me = await get(url, '/api/me', again, API);
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ user: { username: 'ada' } });

    const out = await fetch(`${url}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: again, origin: url },
    });
    expect(out.headers.getSetCookie().join()).toMatch(/^__Host-session=; Max-Age=0/);
    expect((await get(url, '/api/me', again, API)).status).toBe(401);
    expect((await get(url, '/dashboard', again, PAGE)).status).toBe(303);
  });

  it('a wrong password is refused and sets no cookie', async () => {
    const url = await boot();
    const response = await postJson(url, '/login', {
      username: 'ada',
      password: 'not the password',
    });
    expect(response.status).toBe(401);
    expect(response.headers.getSetCookie()).toEqual([]);
  });

  it('a form login returns to the page that was asked for', async () => {
    const url = await boot();
    const response = await fetch(`${url}/login?next=%2Fdashboard`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
      body: new URLSearchParams(demoUser).toString(),
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/dashboard');
    const cookie = cookieOf(response);
    expect((await get(url, '/dashboard', cookie, PAGE)).status).toBe(200);
  });

  it('a cross-site login is refused (no login CSRF): 403 and no session cookie', async () => {
    const url = await boot();
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const attempts: Record<string, string>[] = [
      { ...form, 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
      { ...form, 'sec-fetch-site': 'same-site' },
      { ...form, origin: 'https://evil.example' },
      { ...form, origin: 'null' },
      { ...form, referer: 'https://evil.example/page' },
      form, // no Sec-Fetch-Site, Origin or Referer at all
      { 'content-type': 'application/json', origin: 'https://evil.example' },
    ];
    for (const headers of attempts) {
      const json = headers['content-type'] === 'application/json';
      const response = await fetch(`${url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers,
        body: json ? JSON.stringify(demoUser) : new URLSearchParams(demoUser).toString(),
      });
      expect(response.status, JSON.stringify(headers)).toBe(403);
      expect(response.headers.getSetCookie(), JSON.stringify(headers)).toEqual([]);
    }
    // The same form from the site itself signs in.
    const own = await fetch(`${url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...form, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams(demoUser).toString(),
    });
    expect(own.status).toBe(303);
    cookieOf(own);
  });

  it('a cross-site logout is refused and the session stays valid', async () => {
    const url = await boot();
    const cookie = await login(url);
    const out = await fetch(`${url}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'sec-fetch-site': 'cross-site' },
    });
    expect(out.status).toBe(403);
    expect(out.headers.getSetCookie()).toEqual([]);
    expect((await get(url, '/api/me', cookie, API)).status).toBe(200);
  });

  it('wrong passwords are throttled: 429 with Retry-After, and the right one is refused too', async () => {
    const url = await boot();
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 6; i++) {
      last = await postJson(url, '/login', { username: 'ada', password: `wrong password ${i}` });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const right = await postJson(url, '/login', demoUser);
    expect(right.status).toBe(429);
    expect(right.headers.getSetCookie()).toEqual([]);
  });

  it.runIf(options.outage ?? true)(
    'a store outage is 503 with Retry-After, never "logged out"',
    async () => {
      const { store, setDown } = flakyStore();
      const url = await boot(store);
      const cookie = await login(url);
      setDown(true);
      const api = await get(url, '/api/me', cookie, API);
      expect(api.status).toBe(503);
      expect(api.headers.get('retry-after')).toBe('5');
      expect(await api.json()).toEqual({ error: 'unavailable' });
      expect(api.headers.getSetCookie()).toEqual([]);
      const page = await get(url, '/dashboard', cookie, PAGE);
      expect(page.status).toBe(503);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      setDown(false);
      expect((await get(url, '/api/me', cookie, API)).status).toBe(200);
    },
  );
}

/** Logs the demo user in with JSON; gives the `name=value` to send back as `Cookie`. */
export async function login(url: string): Promise<string> {
  const response = await postJson(url, '/login', demoUser);
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({ user: { username: 'ada' } });
  return cookieOf(response);
}

function postJson(url: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/json', accept: 'application/json', origin: url },
    body: JSON.stringify(body),
  });
}

export function get(
  url: string,
  path: string,
  cookie: string | null,
  headers: Record<string, string>,
): Promise<Response> {
  return fetch(`${url}${path}`, {
    redirect: 'manual',
    headers: cookie ? { ...headers, cookie } : headers,
  });
}

export function cookieOf(response: Response): string {
  const session = response.headers.getSetCookie().find((c) => c.startsWith('__Host-session='));
  expect(session).toBeDefined();
  return (session as string).split(';')[0] as string;
}

/** A memory store that fails every call while down, like a store that lost its connection. */
export function flakyStore(): { store: SessionStore; setDown(down: boolean): void } {
  const inner = new MemoryStore();
  let down = false;
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        down ? Promise.reject(new Error('connection refused')) : value.apply(target, args);
    },
  });
  return { store, setDown: (value) => (down = value) };
}
