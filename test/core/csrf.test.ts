import { describe, expect, it } from 'vitest';
import { CsrfTokens, isSameOrigin } from '../../src/core/csrf.js';

const tokens = new CsrfTokens('s'.repeat(32));

describe('CSRF synchronizer tokens', () => {
  it('a token verifies for its own binding only', () => {
    const token = tokens.tokenFor('session-a');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokens.verify('session-a', token)).toBe(true);
    expect(tokens.verify('session-b', token)).toBe(false);
    expect(new CsrfTokens('t'.repeat(32)).verify('session-a', token)).toBe(false);
  });

  it.each([undefined, null, '', 42, ['x'], 'a'.repeat(43), `${'a'.repeat(42)}é`])(
    'refuses %o',
    (token) => {
      expect(tokens.verify('session-a', token)).toBe(false);
    },
  );

  it('refuses a short secret', () => {
    expect(() => new CsrfTokens('short')).toThrow(/at least 32 bytes/);
  });
});

describe('Fetch Metadata and Origin checks', () => {
  const origin = 'https://app.example';
  const check = (headers: Partial<Parameters<typeof isSameOrigin>[0]>) =>
    isSameOrigin(
      { method: 'POST', origin: null, referer: null, secFetchSite: null, ...headers },
      origin,
    );

  it.each([
    [{ method: 'GET' }, true],
    [{ method: 'HEAD', secFetchSite: 'cross-site' }, true],
    [{ secFetchSite: 'same-origin' }, true],
    [{ secFetchSite: 'same-site' }, false],
    [{ secFetchSite: 'cross-site', origin }, false],
    [{ secFetchSite: 'none' }, false],
    [{ origin }, true],
    [{ origin: 'null' }, false],
    [{ origin: 'https://app.example:8443' }, false],
    [{ origin: 'https://app.example.evil.test' }, false],
    [{ origin: 'http://app.example' }, false],
    [{ referer: 'https://app.example/login?x=1' }, true],
    [{ referer: 'https://evil.test/https://app.example/' }, false],
    [{ referer: 'not a url' }, false],
    [{}, false],
  ])('%o → %s', (headers, expected) => {
    expect(check(headers)).toBe(expected);
  });
});
