import {
  Latchkey,
  MemoryStore,
  type RequestInfo,
  type SessionStore,
  safeNextPath,
  toResponse,
} from 'latchkey';
import { describe, expect, it } from 'vitest';

const html = (url: string, cookie: string | null = null): RequestInfo => ({
  method: 'GET',
  url,
  cookie,
  accept: 'text/html,application/xhtml+xml',
  secFetchMode: 'navigate',
});
const api = (url: string, cookie: string | null = null, method = 'GET'): RequestInfo => ({
  method,
  url,
  cookie,
  accept: 'application/json',
  secFetchMode: 'cors',
});

describe('request-level answers', () => {
  const auth = new Latchkey({ store: new MemoryStore() });

  it('an HTML navigation without a session gets 303 to login with a safe next', async () => {
    const result = await auth.authenticate(html('/profile?tab=keys'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe('missing');
    expect(result.denial.status).toBe(303);
    expect(result.denial.headers.location).toBe('/login?next=%2Fprofile%3Ftab%3Dkeys');
    expect(result.denial.headers['cache-control']).toBe('no-store');
    expect(result.setCookie).toEqual([]);
  });

  it('an API call without a session gets 401 JSON', async () => {
    const result = await auth.authenticate(api('/api/me'));
    expect(!result.ok && result.denial).toEqual({
      status: 401,
      headers: { 'cache-control': 'no-store', 'content-type': 'application/json' },
      body: '{"error":"unauthenticated"}',
    });
  });

  it('a non-GET fetch is an API call even without Accept: application/json', async () => {
    const result = await auth.authenticate({ ...api('/x', null, 'POST'), accept: '*/*' });
    expect(!result.ok && result.denial.status).toBe(401);
  });

  it('an unknown cookie is cleared and answered like no session', async () => {
    const planted = `__Host-session=${Buffer.alloc(32, 3).toString('base64url')}`;
    const result = await auth.authenticate(html('/dashboard', planted));
    expect(!result.ok && result.reason).toBe('not_found');
    expect(result.setCookie[0]).toMatch(/^__Host-session=; Max-Age=0;/);
  });

  it('a Web Request is accepted as is', async () => {
    const { setCookie } = await auth.startSession('user-1', { user: { name: 'Ada' } });
    const cookie = (setCookie[0] as string).split(';')[0] as string;
    const request = new Request('http://127.0.0.1/api/me', {
      headers: { cookie, accept: 'application/json' },
    });
    const result = await auth.authenticate(request);
    expect(result.ok && result.user).toEqual({ name: 'Ada' });
  });

  it('startSession ends the session the request already carried (no fixation)', async () => {
    const before = await auth.startSession('user-1');
    const beforeCookie = (before.setCookie[0] as string).split(';')[0] as string;
    const after = await auth.startSession('user-1', {}, beforeCookie);
    expect(after.session.id).not.toBe(before.session.id);
    expect((await auth.authenticate(api('/api/me', beforeCookie))).ok).toBe(false);
  });

  it('rotateSession gives a new cookie and the old one stops working', async () => {
    const started = await auth.startSession('user-1');
    const oldCookie = (started.setCookie[0] as string).split(';')[0] as string;
    const rotated = await auth.rotateSession(started.session);
    if (!rotated) throw new Error('expected a rotation');
    const newCookie = (rotated.setCookie[0] as string).split(';')[0] as string;
    expect((await auth.authenticate(api('/api/me', oldCookie))).ok).toBe(false);
    expect((await auth.authenticate(api('/api/me', newCookie))).ok).toBe(true);
  });

  it('toResponse turns a denial into a Web Response with its cookies', async () => {
    const result = await auth.authenticate(html('/dashboard', '__Host-session=junk'));
    if (result.ok) throw new Error('expected a denial');
    const response = toResponse(result.denial, result.setCookie);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/login?next=%2Fdashboard');
    expect(response.headers.getSetCookie()).toHaveLength(1);
  });

  it('a store outage is a 503 with Retry-After, never a login redirect', async () => {
    const down = new MemoryStore();
    down.get = () => Promise.reject(new Error('connection reset'));
    const outage = new Latchkey({ store: down as SessionStore });
    const cookie = `__Host-session=${Buffer.alloc(32, 9).toString('base64url')}`;
    for (const info of [html('/dashboard', cookie), api('/api/me', cookie)]) {
      const result = await outage.authenticate(info);
      expect(!result.ok && result.reason).toBe('unavailable');
      expect(!result.ok && result.denial.status).toBe(503);
      expect(!result.ok && result.denial.headers['retry-after']).toBe('5');
      expect(result.setCookie).toEqual([]);
    }
  });
});

describe('safeNextPath keeps only same-origin paths', () => {
  it.each([
    ['/dashboard', '/dashboard'],
    ['/a?b=1&c=%2F', '/a?b=1&c=%2F'],
    ['//evil.example/x', null],
    ['/\\evil.example', null],
    ['https://evil.example/', null],
    ['javascript:alert(1)', null],
    ['/a\r\nLocation: x', null],
    ['', null],
    [`/${'a'.repeat(3000)}`, null],
    [null, null],
  ])('%s → %s', (input, expected) => {
    expect(safeNextPath(input)).toBe(expected);
  });

  it('a redirect never points at the login page itself', async () => {
    const auth = new Latchkey({ store: new MemoryStore() });
    const result = await auth.authenticate(html('/login'));
    expect(!result.ok && result.denial.headers.location).toBe('/login');
  });

  it('a request target of //host is not turned into a next parameter', async () => {
    const auth = new Latchkey({ store: new MemoryStore() });
    const result = await auth.authenticate(html('//evil.example/'));
    expect(!result.ok && result.denial.headers.location).toBe('/login');
  });
});
