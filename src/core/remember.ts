import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type RememberStore, requireCapability } from './capabilities.js';
import { HostCookie } from './cookies.js';
import { type Duration, parseDuration } from './duration.js';
import { ConfigError } from './errors.js';
import type { RememberRecord } from './store.js';

export interface RememberOptions {
  /** Needs the "remember" capability; must be durable (a cache that evicts forgets logins). */
  store: RememberStore;
  /** Default `"__Host-remember"`. */
  cookieName?: string;
  /** Life of a token chain from its password login; rotation never extends it. Default and most `"30d"`. */
  maxAge?: Duration;
  /**
   * How long a rotated token still yields its successor, so parallel tabs stay in; after it, a
   * replay is theft. Default `"10s"`, at most `"1m"`.
   */
  graceWindow?: Duration;
}

/** NIST SP 800-63B 7.2 (AAL1 reauthentication): remember-me lasts at most 30 days. */
const MAX_LIFETIME_MS = 30 * 24 * 3_600_000;
/** A longer grace window would let a stolen token go unnoticed for longer. */
const MAX_GRACE_MS = 60_000;

/** `selector.validator`: 16 + 32 random bytes, base64url. */
const REMEMBER_VALUE = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

export type RememberCheck =
  /** The token is good: start a session for `userId`; `setCookie` carries the rotated token. */
  | { readonly status: 'valid'; readonly record: RememberRecord; readonly setCookie: string }
  /** A rotated token came back after the grace window: somebody else holds a copy. */
  | { readonly status: 'theft'; readonly userId: string }
  | { readonly status: 'invalid' };

/**
 * Remember-me tokens (selector/validator). Only SHA-256(validator) is stored. Every use rotates
 * the token; the successor's validator is derived from the old validator, so for a short grace
 * window parallel requests that still send the old token get the same successor.
 */
export class RememberTokens {
  constructor(
    private readonly store: RememberStore,
    readonly cookie: HostCookie,
    private readonly options: { lifetimeMs: number; graceMs: number; now: () => number },
  ) {}

  /** Starts a token chain at a password login; gives the cookie value and its `Set-Cookie`. */
  async issue(userId: string): Promise<{ value: string; setCookie: string }> {
    const now = this.options.now();
    const validator = randomBytes(32).toString('base64url');
    const record: RememberRecord = {
      selector: randomBytes(16).toString('base64url'),
      validatorHash: hash(validator),
      userId,
      // The chain keeps its first login time and its end: rotation never extends either.
      createdAt: now,
      expiresAt: now + this.options.lifetimeMs,
      replacedBy: null,
      replacedAt: null,
    };
    await this.store.createRemember(record);
    return {
      value: `${record.selector}.${validator}`,
      setCookie: this.serialize(record, validator),
    };
  }

  /** Whether the token `use` gave is still stored: a sign-out since then deleted it. */
  async kept(record: RememberRecord): Promise<boolean> {
    return (await this.store.findRemember(record.selector)) !== null;
  }

  /** Checks a cookie value and rotates the token it names. */
  async use(value: string): Promise<RememberCheck> {
    const match = REMEMBER_VALUE.exec(value);
    if (!match) return { status: 'invalid' };
    const [, selector = '', validator = ''] = match;
    const record = await this.store.findRemember(selector);
    const now = this.options.now();
    if (!record || !sameHash(record.validatorHash, validator) || now >= record.expiresAt) {
      return { status: 'invalid' };
    }
    const successorValidator = successorOf(validator);
    if (record.replacedBy === null) {
      const successor: RememberRecord = {
        ...record,
        selector: randomBytes(16).toString('base64url'),
        validatorHash: hash(successorValidator),
        replacedBy: null,
        replacedAt: null,
      };
      if (await this.store.rotateRemember(selector, successor, now)) {
        return {
          status: 'valid',
          record: successor,
          setCookie: this.serialize(successor, successorValidator),
        };
      }
      // Another request rotated it between our read and write: fall through to the grace path.
      return this.use(value);
    }
    if (record.replacedAt !== null && now - record.replacedAt <= this.options.graceMs) {
      const successor = await this.store.findRemember(record.replacedBy);
      if (
        successor &&
        successor.replacedBy === null &&
        sameHash(successor.validatorHash, successorValidator)
      ) {
        return {
          status: 'valid',
          record: successor,
          setCookie: this.serialize(successor, successorValidator),
        };
      }
      return { status: 'invalid' };
    }
    return { status: 'theft', userId: record.userId };
  }

  /** Deletes the token a cookie value names (logout on this device). */
  async forget(value: string | null): Promise<void> {
    const match = value === null ? null : REMEMBER_VALUE.exec(value);
    if (match?.[1]) await this.store.deleteRemember(match[1]);
  }

  /** Deletes every token of a user (password change, "log out everywhere"). */
  async forgetAll(userId: string): Promise<void> {
    await this.store.deleteRememberByUser(userId);
  }

  private serialize(record: RememberRecord, validator: string): string {
    const maxAge = Math.max(0, Math.floor((record.expiresAt - this.options.now()) / 1000));
    return this.cookie.serialize(`${record.selector}.${validator}`, maxAge);
  }
}

/** The remember-me tokens `options` ask for, or null when remember-me is off; {@link ConfigError} for bad options. */
export function rememberTokensOf(
  options: RememberOptions | undefined,
  now: () => number,
  allowUnprefixed = false,
): RememberTokens | null {
  if (!options) return null;
  const store = requireCapability(options.store, 'remember', 'remember.store');
  const lifetimeMs = parseDuration(options.maxAge ?? '30d', 'remember.maxAge');
  if (lifetimeMs > MAX_LIFETIME_MS) throw new ConfigError('remember.maxAge: at most 30d');
  const graceMs = parseDuration(options.graceWindow ?? '10s', 'remember.graceWindow');
  if (graceMs > MAX_GRACE_MS) throw new ConfigError('remember.graceWindow: at most 1m');
  const cookie = new HostCookie(options.cookieName ?? '__Host-remember', { allowUnprefixed });
  return new RememberTokens(store, cookie, { lifetimeMs, graceMs, now });
}

function hash(validator: string): string {
  return createHash('sha256').update(validator).digest('base64url');
}

function sameHash(storedHash: string, validator: string): boolean {
  const given = Buffer.from(hash(validator));
  const stored = Buffer.from(storedHash);
  return given.length === stored.length && timingSafeEqual(given, stored);
}

/** Only someone holding the old validator can compute the successor's validator. */
function successorOf(validator: string): string {
  return createHmac('sha256', validator).update('latchkey remember successor').digest('base64url');
}
