import { serialize } from 'cookie';
import { ConfigError } from './errors.js';

/** RFC 6265 cookie-name characters (a token). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Larger Cookie headers are refused unread: browsers cap a cookie at 4 KiB. */
const MAX_COOKIE_HEADER = 8192;
/** Printable ASCII, no spaces: what a token we issue looks like (and at most 4 KiB). */
const COOKIE_VALUE = /^[\x21-\x7e]{1,4096}$/;

export type CookieRead =
  | { readonly value: string; readonly reason: null }
  | { readonly value: null; readonly reason: 'missing' | 'malformed' };

/**
 * Writes and reads one host-only cookie: `HttpOnly; Secure; SameSite=Strict; Path=/`, no Domain.
 * Session cookies carry no Max-Age, so they end with the browser session.
 */
export class HostCookie {
  constructor(readonly name: string) {
    if (!COOKIE_NAME.test(name))
      throw new ConfigError(`cookie name "${name}" is not a valid cookie name`);
  }

  /** A `Set-Cookie` value; `maxAge` in seconds makes it persistent. */
  serialize(value: string, maxAge?: number): string {
    return serialize(this.name, value, {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/',
      ...(maxAge === undefined ? {} : { maxAge }),
    });
  }

  /** A `Set-Cookie` value that makes the browser drop the cookie. */
  blank(): string {
    return serialize(this.name, '', {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/',
      maxAge: 0,
      expires: new Date(0),
    });
  }

  /**
   * Finds this cookie in a `Cookie` header. Never throws: an oversize header, a duplicate of this
   * cookie (a planted or tossed cookie) or a value that is not plain ASCII is `malformed`.
   */
  read(header: string | null | undefined): CookieRead {
    if (typeof header !== 'string' || header.length === 0)
      return { value: null, reason: 'missing' };
    if (header.length > MAX_COOKIE_HEADER) return { value: null, reason: 'malformed' };
    // One pass over the header without splitting it into an array (this runs on every request).
    const name = this.name;
    let value: string | null = null;
    let start = 0;
    let eq = header.indexOf('=');
    while (eq !== -1) {
      let end = header.indexOf(';', start);
      if (end === -1) end = header.length;
      if (eq < end) {
        if (header.slice(start, eq).trim() === name) {
          if (value !== null) return { value: null, reason: 'malformed' };
          value = header.slice(eq + 1, end).trim();
        }
        eq = header.indexOf('=', end);
      }
      // A pair without "=" is skipped: `eq` already points past it, so the scan stays linear.
      start = end + 1;
    }
    if (value === null) return { value: null, reason: 'missing' };
    return COOKIE_VALUE.test(value)
      ? { value, reason: null }
      : { value: null, reason: 'malformed' };
  }
}
