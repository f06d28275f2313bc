import { describe, expect, it } from 'vitest';
import { routeOf } from '../../src/server/observe.js';

const TOKEN = 'Zk3q9VbT0aXy7LmN2pQrS4uW';

describe('routeOf, the route an access-log line names', () => {
  it.each([
    ['a short path as it is', '/api/me', '/api/me'],
    ['no target as the root', undefined, '/'],
    ['the query dropped', '/login?next=/dashboard', '/login'],
    ['the fragment dropped', '/dashboard#top', '/dashboard'],
    ['whichever of query and fragment comes first', '/a#b?c', '/a'],
    ['an id segment masked', `/api/sessions/${TOKEN}`, '/api/sessions/:id'],
    ['an id segment masked before a query', `/reset/${TOKEN}?x=1`, '/reset/:id'],
    ['a 19-character segment kept', `/s/${'a'.repeat(19)}`, `/s/${'a'.repeat(19)}`],
    ['a 20-character segment masked', `/s/${'a'.repeat(20)}`, '/s/:id'],
    ['a query holding a token never logged', `/api/me?token=${TOKEN}`, '/api/me'],
  ])('gives %s', (_name, url, route) => {
    expect(routeOf(url)).toBe(route);
  });

  it('caps a huge path before masking it', () => {
    const route = routeOf(`/${'ab/'.repeat(10_000)}`);
    expect(route.length).toBeLessThanOrEqual(512);
    expect(route.startsWith('/ab/ab/')).toBe(true);
  });
});
