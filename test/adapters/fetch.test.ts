import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { Latchkey, MemoryStore, type SessionStore, StoreUnavailableError } from 'latchkey';
import {
  type Auth,
  authenticate,
  completeLogin,
  login,
  readSession,
  withCookies,
} from 'latchkey/fetch';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { assuranceFlowTests, flakyStore, type StartAssuranceApp } from './flow.js';

type Member = { id: string; username: string; plan: 'free' | 'pro' };

/** A memory store that records which methods were called. */
function watchedStore(): { store: SessionStore; calls: string[] } {
  const calls: string[] = [];
  const store = new Proxy(new MemoryStore(), {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return value.apply(target, args);
      };
    },
  });
  return { store, calls };
}

async function signedIn(latchkey: Latchkey): Promise<Headers> {
  const { setCookie } = await latchkey.startSession('u1', {
    user: { id: 'u1', username: 'ada', plan: 'pro' },
  });
  return new Headers({ cookie: (setCookie[0] as string).split(';')[0] as string });
}

describe('latchkey/fetch: readSession (rendering) never writes', () => {
  it('reads a live session without refreshing it, where authenticate would', async () => {
    let now = 1_000_000;
    const { store, calls } = watchedStore();
    const latchkey = new Latchkey({ store, touchInterval: 0, clock: () => now });
    const headers = await signedIn(latchkey);
    now += 1000;
    calls.length = 0;
    const auth = await readSession<Member>(latchkey, headers);
    expect(auth?.user).toEqual({ id: 'u1', username: 'ada', plan: 'pro' });
    expect(calls).toEqual(['get']);
    const result = await authenticate(latchkey, new Request('http://app/api', { headers }));
    expect(result.ok).toBe(true);
    expect(calls).toEqual(['get', 'get', 'touch']);
  });

  it('an expired session is null and is left for the next authenticate to delete', async () => {
    let now = 1_000_000;
    const { store, calls } = watchedStore();
    const events: string[] = [];
    const latchkey = new Latchkey({
      store,
      idleTimeout: '1s',
      clock: () => now,
      onEvent: (event) => events.push(event.type),
    });
    const headers = await signedIn(latchkey);
    now += 1000;
    calls.length = 0;
    events.length = 0;
    expect(await readSession(latchkey, headers)).toBeNull();
    expect(calls).toEqual(['get']);
    expect(events).toEqual([]);
    const result = await authenticate(latchkey, new Request('http://app/api', { headers }));
    expect(result.ok).toBe(false);
    expect(calls).toEqual(['get', 'get', 'delete']);
  });

  it('no cookie, or a malformed one, never reaches the store', async () => {
    const { store, calls } = watchedStore();
    const latchkey = new Latchkey({ store });
    expect(await readSession(latchkey, new Headers())).toBeNull();
    expect(await readSession(latchkey, new Headers({ cookie: '__Host-session=%%%' }))).toBeNull();
    expect(await readSession(latchkey, new Headers({ cookie: '__Host-session=abc' }))).toBeNull();
    expect(calls).toEqual([]);
  });

  it('a store outage throws StoreUnavailableError: not "logged out"', async () => {
    const { store, setDown } = flakyStore();
    const latchkey = new Latchkey({ store });
    const headers = await signedIn(latchkey);
    setDown(true);
    await expect(readSession(latchkey, headers)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('latchkey/fetch: authenticate (route handlers, proxy.ts)', () => {
  it('answers a store outage with the core 503 and Retry-After', async () => {
    const { store, setDown } = flakyStore();
    const latchkey = new Latchkey({ store });
    const headers = await signedIn(latchkey);
    setDown(true);
    const result = await authenticate(latchkey, new Request('http://app/api/me', { headers }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.response.status).toBe(503);
    expect(result.response.headers.get('retry-after')).toBe('5');
  });

  it('a remember-me restore gives the new cookies to put on the response', async () => {
    const store = new MemoryStore();
    const latchkey = new Latchkey({ store, users: store, remember: { store } });
    await latchkey.createUser('ada', 'correct horse battery staple');
    const login = await latchkey.login({
      username: 'ada',
      password: 'correct horse battery staple',
      remember: true,
    });
    if (!login.ok) throw new Error('login failed');
    const remember = login.setCookie.find((c) => c.startsWith('__Host-remember='));
    const cookie = (remember as string).split(';')[0] as string;
    const request = new Request('http://app/dashboard', { headers: { cookie } });
    const result = await authenticate(latchkey, request, { ip: '203.0.113.7' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.auth.session.ip).toBe('203.0.113.7');
    const names = result.setCookie.map((c) => c.split('=')[0]);
    expect(names).toEqual(expect.arrayContaining(['__Host-session', '__Host-remember']));
    const response = withCookies(Response.json({}), result.setCookie);
    expect(response.headers.getSetCookie()).toEqual(result.setCookie);
  });

  it('types the user from its type parameter', async () => {
    const latchkey = new Latchkey({ store: new MemoryStore() });
    const headers = await signedIn(latchkey);
    const result = await authenticate<Member>(latchkey, new Request('http://app/', { headers }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expectTypeOf(result.auth).toEqualTypeOf<Auth<Member>>();
    expectTypeOf(result.auth.user.plan).toEqualTypeOf<'free' | 'pro'>();
    expect(result.auth.user.plan).toBe('pro');
    expectTypeOf(readSession<Member>).returns.resolves.toEqualTypeOf<Auth<Member> | null>();
  });
});

describe('latchkey/fetch: withCookies', () => {
  it('adds cookies to a response, copying one whose headers are immutable', async () => {
    const redirect = withCookies(Response.redirect('http://app/login', 303), ['a=1', 'b=2']);
    expect(redirect.status).toBe(303);
    expect(redirect.headers.get('location')).toBe('http://app/login');
    expect(redirect.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    const json = withCookies(Response.json({ ok: true }), ['c=3']);
    expect(json.headers.getSetCookie()).toEqual(['c=3']);
    expect(await json.json()).toEqual({ ok: true });
  });
});

/** Route handlers over latchkey/fetch, served by a real node:http server. */
const startAssurance: StartAssuranceApp = async (latchkey) => {
  async function handle(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    const route = `${request.method} ${pathname}`;
    if (route === 'POST /login') {
      const credentials = (await request.json()) as Record<string, unknown>;
      const result = await login(latchkey, request, credentials);
      const response = result.ok
        ? Response.json({ user: result.user })
        : Response.json({ error: result.error }, { status: 401 });
      // The session's cookie, or the pending login's on `second_factor_required`.
      return withCookies(response, 'setCookie' in result ? result.setCookie : []);
    }
    if (route === 'POST /login/second-factor') {
      const { code } = (await request.json()) as { code?: unknown };
      const result = await completeLogin(latchkey, request, { type: 'totp', code });
      const response = result.ok
        ? Response.json({ user: result.user })
        : Response.json({ error: result.error }, { status: 401 });
      return withCookies(response, result.setCookie);
    }
    const aal = pathname === '/api/me' ? undefined : 2;
    const result = await authenticate(latchkey, request, { aal });
    if (!result.ok) return result.response;
    const { session, user } = result.auth;
    const response =
      pathname === '/settings'
        ? new Response(`Settings of ${user.username}`)
        : Response.json({ aal: session.aal });
    return withCookies(response, result.setCookie);
  }
  const server = createAdaptorServer({ fetch: handle, overrideGlobalObjects: false });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

describe('latchkey/fetch: assurance levels over real HTTP', () => {
  assuranceFlowTests(startAssurance);
});
