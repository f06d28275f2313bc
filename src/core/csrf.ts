import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from './errors.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Synchronizer tokens: HMAC-SHA256 of a binding (a session id, or a pre-login cookie) under a
 * server secret. A token is worthless for any other session and never needs to be stored.
 */
export class CsrfTokens {
  private readonly key: Buffer;

  constructor(secret: string | Buffer) {
    this.key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    if (this.key.length < 32) throw new ConfigError('csrf secret: must be at least 32 bytes');
  }

  tokenFor(binding: string): string {
    return createHmac('sha256', this.key).update(`csrf:${binding}`).digest('base64url');
  }

  /** Constant-time check; anything that is not a string of the right shape is false. */
  verify(binding: string, token: unknown): boolean {
    if (typeof token !== 'string' || token.length !== 43) return false;
    const expected = Buffer.from(this.tokenFor(binding));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

export interface OriginHeaders {
  readonly method: string;
  readonly origin: string | null;
  readonly referer: string | null;
  readonly secFetchSite: string | null;
}

/**
 * Fetch Metadata and Origin check for state-changing requests. Safe methods pass. Otherwise
 * `Sec-Fetch-Site` must be `same-origin`; without it, `Origin` (or else `Referer`) must name
 * exactly `expectedOrigin`; a request with none of them is refused.
 */
export function isSameOrigin(headers: OriginHeaders, expectedOrigin: string): boolean {
  if (SAFE_METHODS.has(headers.method)) return true;
  if (headers.secFetchSite !== null) return headers.secFetchSite === 'same-origin';
  if (headers.origin !== null) return headers.origin === expectedOrigin;
  if (headers.referer !== null) {
    try {
      return new URL(headers.referer).origin === expectedOrigin;
    } catch {
      return false;
    }
  }
  return false;
}
