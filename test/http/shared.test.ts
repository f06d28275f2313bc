import { ConfigError, Latchkey, MemoryStore, type RequestInfo } from 'latchkey';
import { describe, expect, it } from 'vitest';
import {
  denialFor,
  denialOf,
  escapeHtml,
  RequestStates,
  UNSAFE_IN_PATH,
  wantsHtml,
  withoutTokenLikeParams,
} from '../../src/http/shared.js';

const page = (url: string, method = 'GET'): RequestInfo => ({
  method,
  url,
  cookie: null,
  accept: 'text/html',
  secFetchMode: 'navigate',
});
const api: RequestInfo = {
  method: 'GET',
  url: '/api/me',
  cookie: null,
  accept: 'application/json',
  secFetchMode: 'cors',
};

describe('denials, rendered outside the core', () => {
  it('a page goes to the login path with next; an API call gets 401; an outage 503', () => {
    expect(denialFor(page('/a?b=1'), 'expired', '/signin')).toEqual({
      status: 303,
      headers: {
        'cache-control': 'no-store',
        location: '/signin?next=%2Fa%3Fb%3D1',
        'content-type': 'text/html; charset=utf-8',
      },
      body: '<!doctype html><title>Sign in</title><p><a href="/signin?next=%2Fa%3Fb%3D1">Sign in</a> to continue.</p>',
    });
    expect(denialFor(api, 'not_found', '/login').status).toBe(401);
    const down = denialFor(page('/a'), 'unavailable', '/login');
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBe('5');
    expect(down.headers['content-type']).toMatch(/^text\/html/);
    expect(denialFor(api, 'unavailable', '/login').body).toBe('{"error":"unavailable"}');
  });

  it('a form post is sent to login without next; a token in the query never returns', () => {
    expect(denialFor(page('/a', 'POST'), 'missing', '/login').headers.location).toBe('/login');
    const token = 'A'.repeat(43);
    expect(withoutTokenLikeParams(`/a?sid=${token}&tab=2`)).toBe('/a?tab=2');
    expect(withoutTokenLikeParams(`/a?sid=${token}`)).toBe('/a');
    expect(denialFor(page(`http://app/x?t=${token}`), 'missing', '/login').headers.location).toBe(
      '/login?next=%2Fx',
    );
  });

  it('wantsHtml: JSON wins, navigations and plain GETs are pages, other fetches are not', () => {
    expect(wantsHtml({ ...page('/'), accept: 'text/html, application/json' })).toBe(false);
    expect(wantsHtml({ ...api, accept: null, secFetchMode: null })).toBe(true);
    expect(wantsHtml({ ...api, method: 'POST', accept: '*/*', secFetchMode: null })).toBe(false);
  });

  it('escapeHtml and the unsafe-path characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&#60;a href=&#34;x&#34; title=&#39;y&#39;&#62;&#38;&#60;/a&#62;',
    );
    for (const bad of ['/a\u0000', '/a\r\n', '/a\u007f', '/\\evil']) {
      expect(UNSAFE_IN_PATH.test(bad)).toBe(true);
    }
    expect(UNSAFE_IN_PATH.test('/a/b?c=d%2F')).toBe(false);
  });
});

describe('per-request state of the middlewares', () => {
  it('a guard without the middleware is a ConfigError saying what to mount', () => {
    const states = new RequestStates<object>('mount the middleware first');
    expect(() => states.of({})).toThrow(ConfigError);
    expect(() => states.of({})).toThrow('mount the middleware first');
    expect(states.find({})).toBeUndefined();
  });

  it('after a logout in the request, the guard asks the core again and denies', async () => {
    const latchkey = new Latchkey({ store: new MemoryStore() });
    const { setCookie } = await latchkey.startSession('user-1');
    const info = { ...api, cookie: (setCookie[0] as string).split(';')[0] as string };
    const states = new RequestStates<object>('mount it');
    const request = {};
    states.record(request, latchkey, info, await latchkey.authenticate(info));
    const state = states.of(request);
    expect(await denialOf(state)).toBeNull();
    await latchkey.endSession(info.cookie);
    expect((await denialOf(state))?.status).toBe(401);
  });
});
