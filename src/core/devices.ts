import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { HostCookie } from './cookies.js';
import { ConfigError } from './errors.js';

/** How long a browser stays known after its last password login (browsers cap cookies at 400 days). */
const DEVICE_LIFETIME_SECONDS = 365 * 24 * 3600;
/** `nonce.signature`: 16 random bytes and an HMAC-SHA-256, base64url. */
const DEVICE_VALUE = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

/**
 * OWASP's device cookies ("Slow Down Online Guessing Attacks with Device Cookies"): a browser
 * that logged in to an account gets a cookie signed with the server secret and bound to that
 * account. Its login attempts are then counted on the cookie's own counter, so strangers
 * guessing the account's password cannot lock its owner out. The cookie proves only "this
 * browser logged in to this account before"; it grants nothing else, and outlives logout.
 */
export class DeviceCookies {
  readonly cookie: HostCookie;
  private readonly key: Buffer;

  constructor(secret: string | Buffer) {
    if (secret.length < 32) {
      throw new ConfigError('throttle.deviceSecret: at least 32 characters (or bytes) of secret');
    }
    // Its own key, derived from the server secret, so a device signature is never a valid CSRF token.
    this.key = createHmac('sha256', secret).update('latchkey device cookie').digest();
    this.cookie = new HostCookie('__Host-device');
  }

  /** A `Set-Cookie` for a browser that just logged in to the account `usernameKey`. */
  issue(usernameKey: string): string {
    const nonce = randomBytes(16).toString('base64url');
    return this.cookie.serialize(
      `${nonce}.${this.sign(usernameKey, nonce)}`,
      DEVICE_LIFETIME_SECONDS,
    );
  }

  /**
   * The device id when `cookieHeader` carries a device cookie this server signed for the account
   * `usernameKey`; null otherwise (no cookie, a forged one, or another account's).
   */
  deviceOf(cookieHeader: string | null | undefined, usernameKey: string): string | null {
    const value = this.cookie.read(cookieHeader).value;
    const match = value === null ? null : DEVICE_VALUE.exec(value);
    if (!match) return null;
    const [, nonce = '', signature = ''] = match;
    const expected = Buffer.from(this.sign(usernameKey, nonce));
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected) ? nonce : null;
  }

  private sign(usernameKey: string, nonce: string): string {
    const account = createHash('sha256').update(usernameKey).digest('base64url');
    return createHmac('sha256', this.key).update(`${account}\n${nonce}`).digest('base64url');
  }
}
