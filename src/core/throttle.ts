import { createHash } from 'node:crypto';
import type { AttemptRule, ThrottleStore } from './capabilities.js';

/** How attempts on one key (an account or an IP) are limited. */
export interface ThrottleRule {
  /** Length of the counting window, from the window's first attempt. */
  readonly windowMs: number;
  /** Attempts allowed per window. */
  readonly limit: number;
  /** Attempts allowed back to back before delays start. */
  readonly freeAttempts: number;
  /** Delay after the first attempt past `freeAttempts`; doubles with each further attempt. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

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
  private readonly accountRule: AttemptRule;
  private readonly ipRule: AttemptRule;

  constructor(
    private readonly store: ThrottleStore,
    private readonly now: () => number,
    options: LoginThrottleOptions = {},
  ) {
    this.account = { ...ACCOUNT, ...options.account };
    this.ip = { ...IP, ...options.ip };
    this.accountRule = attemptRuleOf(this.account);
    this.ipRule = attemptRuleOf(this.ip);
  }

  /** Counts one login attempt for `usernameKey` from `ip`, or refuses it. */
  async attempt(usernameKey: string, ip: string | null): Promise<ThrottleOutcome> {
    const now = this.now();
    const checks: [string, AttemptRule][] = [[accountKey(usernameKey), this.accountRule]];
    if (ip) checks.push([keyOf('ip', ip), this.ipRule]);
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

/**
 * The backoff policy as the store applies it: no wait for the free attempts, then `baseDelayMs`
 * doubling with each further attempt up to `maxDelayMs`. The policy lives here alone; a store
 * only counts and looks the wait up.
 */
export function attemptRuleOf(rule: ThrottleRule): AttemptRule {
  const delays: number[] = [];
  let delay = rule.baseDelayMs;
  while (delay < rule.maxDelayMs && delays.length < 64) {
    delays.push(delay);
    delay *= 2;
  }
  delays.push(rule.maxDelayMs);
  return {
    windowMs: rule.windowMs,
    limit: rule.limit,
    freeAttempts: rule.freeAttempts,
    delays,
  };
}
