import { serialize } from 'cookie';
import { ConfigError } from './errors.js';

/** RFC 6265 cookie-name characters (a token). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * Larger Cookie headers are not read: browsers cap a cookie at 4 KiB, so a bigger header is
 * cookies piled on by someone else (a sibling subdomain "cookie bomb").
 */
const MAX_COOKIE_HEADER = 8192;
/** The prefix that makes a browser refuse the cookie from anywhere but this host, over HTTPS. */
export const HOST_PREFIX = '__Host-';
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
  /**
   * Throws {@link ConfigError} for a name that is not a cookie name, and for one without the
   * `__Host-` prefix unless `allowUnprefixed` (a sibling subdomain could then set or shadow it).
   */
  constructor(
    readonly name: string,
    options: { readonly allowUnprefixed?: boolean } = {},
  ) {
    if (!COOKIE_NAME.test(name))
      throw new ConfigError(`cookie name "${name}" is not a valid cookie name`);
    if (!name.startsWith(HOST_PREFIX) && options.allowUnprefixed !== true) {
      throw new ConfigError(
        `cookie name "${name}" has no ${HOST_PREFIX} prefix, so a sibling subdomain could set it; use a ${HOST_PREFIX} name or opt in with allowUnprefixedCookieName`,
      );
    }
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
   * Finds this cookie in a `Cookie` header. Never throws: a duplicate of this cookie (a planted or
   * tossed cookie) or a value that is not plain ASCII is `malformed`. An oversize header is
   * `missing`: it is not read at all, so the answer clears no cookie (a cookie bomb from a
   * sibling subdomain must not log the user out, nor end a remember-me token).
   */
  read(header: string | null | undefined): CookieRead {
    if (typeof header !== 'string' || header.length === 0 || header.length > MAX_COOKIE_HEADER)
      return MISSING;
    // One pass over the header without splitting it into an array (this runs on every request).
    const name = this.name;
    let value: string | null = null;
    let start = 0;
    let eq = header.indexOf('=');
    while (eq !== -1) {
      let end = header.indexOf(';', start);
      if (end === -1) end = header.length;
      if (eq < end) {
        if (trimWhitespace(header.slice(start, eq)) === name) {
          if (value !== null) return { value: null, reason: 'malformed' };
          value = trimWhitespace(header.slice(eq + 1, end));
        }
        eq = header.indexOf('=', end);
      }
      // A pair without "=" is skipped: `eq` already points past it, so the scan stays linear.
      start = end + 1;
    }
    if (value === null) return MISSING;
    return COOKIE_VALUE.test(value)
      ? { value, reason: null }
      : { value: null, reason: 'malformed' };
  }
}

const MISSING: CookieRead = Object.freeze({ value: null, reason: 'missing' } as const);

/**
 * Drops the spaces and tabs around a cookie name or value (RFC 6265 OWS), and nothing else:
 * `String.prototype.trim` would also drop U+00A0 and other spaces, matching names we never set.
 */
function trimWhitespace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === ' ' || text[start] === '\t')) start++;
  while (end > start && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--;
  return text.slice(start, end);
}
