import { ConfigError, HostCookie, Latchkey, MemoryStore } from 'latchkey';
import { describe, expect, it } from 'vitest';

const cookie = new HostCookie('__Host-session');
const TOKEN = 'A'.repeat(43);

describe('HostCookie.read never throws on hostile headers', () => {
  it.each([
    ['no header', undefined, 'missing'],
    ['empty header', '', 'missing'],
    ['other cookies only', 'a=1; b=2', 'missing'],
    ['lower-case prefix is another cookie', `__host-session=${TOKEN}`, 'missing'],
    ['a name that only ends with ours', `x__Host-session=${TOKEN}`, 'missing'],
    ['two session cookies', `__Host-session=${TOKEN}; __Host-session=${TOKEN}`, 'malformed'],
    ['empty value', '__Host-session=', 'malformed'],
    ['NUL byte', `__Host-session=${TOKEN}\u0000`, 'malformed'],
    ['CRLF', `__Host-session=${TOKEN}\r\nX-Evil: 1`, 'malformed'],
    ['unicode', '__Host-session=ßßß', 'malformed'],
    [
      '8 KiB header (a cookie bomb): not read, so nothing is cleared',
      `__Host-session=${TOKEN}; b=${'x'.repeat(8200)}`,
      'missing',
    ],
    ['U+00A0 before the name is part of the name', `\u00a0__Host-session=${TOKEN}`, 'missing'],
    ['U+FEFF before the name is part of the name', `\ufeff__Host-session=${TOKEN}`, 'missing'],
    ['U+3000 after the name is part of the name', `__Host-session\u3000=${TOKEN}`, 'missing'],
    ['U+00A0 around the value is refused', `__Host-session=\u00a0${TOKEN}`, 'malformed'],
    ['5 KiB value', `__Host-session=${'x'.repeat(5000)}`, 'malformed'],
  ])('%s → %s', (_name, header, reason) => {
    expect(cookie.read(header)).toEqual({ value: null, reason });
  });

  it('finds the value among other cookies, with spaces around it', () => {
    expect(cookie.read(`theme=dark;  __Host-session=${TOKEN} ; lang=en`)).toEqual({
      value: TOKEN,
      reason: null,
    });
  });

  it('trims only spaces and tabs around a name and a value', () => {
    expect(cookie.read(`\t __Host-session\t= ${TOKEN}\t`)).toEqual({ value: TOKEN, reason: null });
  });

  it('a name without the __Host- prefix needs allowUnprefixedCookieName', () => {
    const store = new MemoryStore();
    expect(() => new HostCookie('session')).toThrow(ConfigError);
    expect(() => new Latchkey({ store, cookieName: 'session' })).toThrow(/__Host- prefix/);
    expect(() => new Latchkey({ store, remember: { store, cookieName: 'remember' } })).toThrow(
      /__Host- prefix/,
    );
    const allowed = new Latchkey({ store, cookieName: 'session', allowUnprefixedCookieName: true });
    expect(allowed.sessionCookie.name).toBe('session');
  });

  it('serialises a persistent cookie only when a Max-Age is given', () => {
    expect(cookie.serialize(TOKEN)).not.toMatch(/Max-Age|Expires|Domain/);
    expect(cookie.serialize(TOKEN, 3600)).toMatch(/; Max-Age=3600;/);
  });
});
