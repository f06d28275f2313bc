import { createHash } from 'node:crypto';
import type { ThrottleRule, ThrottleStore } from './store.js';

export interface LoginThrottleOptions {
  /** Attempts on one account. Default: 5 back to back, then 1 s doubling to 60 s; 100 per hour. */
  account?: Partial<ThrottleRule>;
  /**
   * Attempts from one client IP, over all accounts, successes included (an office behind one NAT
   * logs in often). Default: 100, then 100 ms doubling to 5 s; 1,000 per hour.
   */
  ip?: Partial<ThrottleRule>;
}

export type ThrottleOutcome =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterSeconds: number };

const HOUR = 3_600_000;
const ACCOUNT: ThrottleRule = {
  windowMs: HOUR,
  limit: 100,
  freeAttempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
};
const IP: ThrottleRule = {
  windowMs: HOUR,
  limit: 1000,
  freeAttempts: 100,
  baseDelayMs: 100,
  maxDelayMs: 5000,
};

/**
 * Login attempt limits per account and per IP, counted in the store so they hold across
 * processes. An attempt is counted before the password is checked, so a parallel burst cannot
 * slip past the limit; a successful login clears the account's count. Nothing locks for good:
 * every refusal ends by its `retryAfterSeconds`.
 */
export class LoginThrottle {
  readonly account: ThrottleRule;
  readonly ip: ThrottleRule;

  constructor(
    private readonly store: ThrottleStore,
    private readonly now: () => number,
    options: LoginThrottleOptions = {},
  ) {
    this.account = { ...ACCOUNT, ...options.account };
    this.ip = { ...IP, ...options.ip };
  }

  /** Counts one login attempt for `usernameKey` from `ip`, or refuses it. */
  async attempt(usernameKey: string, ip: string | null): Promise<ThrottleOutcome> {
    const now = this.now();
    const checks: [string, ThrottleRule][] = [[accountKey(usernameKey), this.account]];
    if (ip) checks.push([keyOf('ip', ip), this.ip]);
    for (const [key, rule] of checks) {
      const decision = await this.store.consumeAttempt(key, now, rule);
      if (!decision.allowed) {
        return {
          allowed: false,
          retryAfterSeconds: Math.max(1, Math.ceil((decision.retryAt - now) / 1000)),
        };
      }
    }
    return { allowed: true };
  }

  /** Clears an account's count after a successful login. */
  succeeded(usernameKey: string): Promise<void> {
    return this.store.resetAttempts(accountKey(usernameKey));
  }
}

function accountKey(usernameKey: string): string {
  return keyOf('account', usernameKey);
}

/** Keys are hashed: people type passwords into the username field, and stores are not secret. */
function keyOf(kind: string, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 32)}`;
}
