import { type Duration, Latchkey, MemoryStore, type SessionStore } from 'latchkey';
import { Secret, TOTP } from 'otpauth';
import { afterEach, expect, it } from 'vitest';
import { FakeClock, movableClock } from '../helpers/clock.js';

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

/**
 * An app over one adapter serving the routes of {@link assuranceFlowTests}, each through the
 * adapter's own helpers:
 * - `POST /login` (JSON credentials): 200 `{ user }`, else 401 `{ error }`, with the result's cookies;
 * - `POST /login/second-factor` (JSON `{ code }`, a TOTP code): 200 `{ user }`, else 401 `{ error }`;
 * - `GET /api/me`: any session, `{ aal }`;
 * - `GET /settings` (text `Settings of <username>`) and `GET /api/settings` (`{ aal }`): aal 2.
 */
export type StartAssuranceApp = (latchkey: Latchkey) => Promise<RunningExample>;

const SECOND_FACTOR_KEY = 'k'.repeat(32);
/** `bob` has no second factor: his password login gives a level-1 session. */
const secondUser = { username: 'bob', password: 'another horse battery staple' };

/**
 * Assurance levels over real HTTP: a route guarded with aal 2 sends a level-1 session to the
 * second-factor step (303 with `next` for pages, 401 `second_factor_required` for the API), and a
 * session completed with a second factor passes. The same answers in every adapter, the core's.
 */
export function assuranceFlowTests(start: StartAssuranceApp): void {
  const running: RunningExample[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((app) => app.close()));
  });
  /** An app whose `ada` has a confirmed authenticator (its secret given back) and `bob` none. */
  async function boot(): Promise<{ url: string; clock: FakeClock; secret: string }> {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const latchkey = new Latchkey({
      store,
      users: store,
      secondFactor: { store, secretKey: SECOND_FACTOR_KEY },
      clock: clock.now,
    });
    const ada = await latchkey.createUser(demoUser.username, demoUser.password);
    await latchkey.createUser(secondUser.username, secondUser.password);
    const factors = latchkey.secondFactors;
    const enrolment = await factors?.beginTotp(ada.id, ada.username);
    if (!factors || !enrolment) throw new Error('no TOTP enrolment');
    const confirmed = await factors.confirmTotp(
      ada.id,
      enrolment.factorId,
      codeAt(enrolment.secret, clock),
    );
    if (!confirmed.ok) throw new Error(confirmed.error);
    clock.advance(30_000); // the confirming code's step is used up
    const app = await start(latchkey);
    running.push(app);
    return { url: app.url, clock, secret: enrolment.secret };
  }

  it('a level-1 session on an aal 2 route: pages go to the second factor, the API gets 401', async () => {
    const { url } = await boot();
    const response = await postJson(url, '/login', secondUser);
    expect(response.status).toBe(200);
    const cookie = cookieOf(response);
    const me = await get(url, '/api/me', cookie, API);
    expect(me.status).toBe(200);
    expect(await me.json()).toEqual({ aal: 1 });

    const page = await get(url, '/settings?tab=2', cookie, PAGE);
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login/second-factor?next=%2Fsettings%3Ftab%3D2');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const api = await get(url, '/api/settings', cookie, API);
    expect(api.status).toBe(401);
    expect(api.headers.get('content-type')).toBe('application/json');
    expect(api.headers.get('cache-control')).toBe('no-store');
    expect(await api.json()).toEqual({ error: 'second_factor_required' });
    // The session is not ended for lacking a level: it still serves the routes that need none.
    expect(api.headers.getSetCookie()).toEqual([]);
    expect((await get(url, '/api/me', cookie, API)).status).toBe(200);
  });

  it('without a session, an aal 2 route asks for a login first', async () => {
    const { url } = await boot();
    const page = await get(url, '/settings', null, PAGE);
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login?next=%2Fsettings');
    const api = await get(url, '/api/settings', null, API);
    expect(api.status).toBe(401);
    expect(await api.json()).toEqual({ error: 'unauthenticated' });
  });

  it('a password login with a second factor sets the pending cookie; the code gives a level-2 session that passes', async () => {
    const { url, clock, secret } = await boot();
    const first = await postJson(url, '/login', demoUser);
    expect(first.status).toBe(401);
    expect(await first.json()).toEqual({ error: 'second_factor_required' });
    const firstCookies = first.headers.getSetCookie();
    expect(firstCookies.some((line) => line.startsWith('__Host-session='))).toBe(false);
    const pending = cookieNamed(firstCookies, '__Host-latchkey-2fa');
    // A pending login is no session.
    expect((await get(url, '/api/me', pending, API)).status).toBe(401);

    const wrong = await postJson(url, '/login/second-factor', { code: '000000' }, pending);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'invalid_code' });
    expect(wrong.headers.getSetCookie().some((line) => line.startsWith('__Host-session='))).toBe(
      false,
    );

    const code = codeAt(secret, clock);
    const done = await postJson(url, '/login/second-factor', { code }, pending);
    expect(done.status).toBe(200);
    expect(await done.json()).toMatchObject({ user: { username: 'ada' } });
    expect(done.headers.getSetCookie().join()).toMatch(/__Host-latchkey-2fa=;.*Max-Age=0/i);
    const cookie = cookieOf(done);
    const page = await get(url, '/settings', cookie, PAGE);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Settings of ada');
    const api = await get(url, '/api/settings', cookie, API);
    expect(api.status).toBe(200);
    expect(await api.json()).toEqual({ aal: 2 });
  });
}

/** A code from the authenticator app at the clock's time. */
function codeAt(secret: string, clock: FakeClock): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: clock.now() });
}

/** The `name=value` of the cookie `name` among `Set-Cookie` values. */
function cookieNamed(setCookie: readonly string[], name: string): string {
  const line = setCookie.find((value) => value.startsWith(`${name}=`));
  expect(line).toBeDefined();
  return (line as string).split(';')[0] as string;
}

/** Logs the demo user in with JSON; gives the `name=value` to send back as `Cookie`. */
export async function login(url: string): Promise<string> {
  const response = await postJson(url, '/login', demoUser);
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({ user: { username: 'ada' } });
  return cookieOf(response);
}

function postJson(
  url: string,
  path: string,
  body: unknown,
  cookie: string | null = null,
): Promise<Response> {
  const headers = { 'content-type': 'application/json', accept: 'application/json', origin: url };
  return fetch(`${url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: cookie ? { ...headers, cookie } : headers,
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
