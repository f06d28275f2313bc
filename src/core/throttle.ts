import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { AttemptRule, ThrottleStore } from './capabilities.js';
import { ConfigError } from './errors.js';

/** How attempts on one key (an account, a device, an IP or everyone) are limited. */
export interface ThrottleRule {
  /** Length of the counting window, from the window's first attempt. */
  readonly windowMs: number;
  /** Attempts allowed per window. Checked at construction: the delays must let it be reached. */
  readonly limit: number;
  /** Attempts allowed back to back before delays start. */
  readonly freeAttempts: number;
  /** Delay after the first attempt past `freeAttempts`; doubles with each further attempt. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface LoginThrottleOptions {
  /**
   * Attempts on one account from clients without its device cookie. Default: 5 back to back,
   * then 1 s doubling to 30 s; 100 per hour.
   */
  account?: Partial<ThrottleRule>;
  /**
   * Attempts from one browser holding a device cookie of the account (it logged in to it before),
   * on its own counter: strangers' failures never lock it out. Default: as `account`.
   */
  device?: Partial<ThrottleRule>;
  /**
   * Attempts from one client IP (IPv6 by /64), over all accounts, successes included (an office
   * behind one NAT logs in often). Default: 100, then 100 ms doubling to 3 s; 1,000 per hour.
   */
  ip?: Partial<ThrottleRule>;
  /** Every login attempt without a device cookie, from anywhere. Default: 6,000 per minute. */
  global?: Partial<ThrottleRule>;
  /** Sign-ups from one client IP (IPv6 by /64). Default: 20, then 1 s doubling to 30 s; 100 per hour. */
  signupIp?: Partial<ThrottleRule>;
  /** Every sign-up, from anywhere. Default: 300 per minute. */
  signupGlobal?: Partial<ThrottleRule>;
}

export type ThrottleOutcome =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterSeconds: number };

/**
 * How a login attempt was counted: on a trusted device's own counter (`device`), per account and
 * per IP (`ip`), or per account only because the request carried no client address
 * (`unknown_ip`: an adapter without an IP source, so the per-IP limit could not apply).
 */
export type AttemptClient = 'device' | 'ip' | 'unknown_ip';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const ACCOUNT: ThrottleRule = {
  windowMs: HOUR,
  limit: 100,
  freeAttempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
};
const IP: ThrottleRule = {
  windowMs: HOUR,
  limit: 1000,
  freeAttempts: 100,
  baseDelayMs: 100,
  maxDelayMs: 3000,
};
/** A rate without delays: `limit` per window, back to back. */
function rate(limit: number, windowMs: number): ThrottleRule {
  return { windowMs, limit, freeAttempts: limit, baseDelayMs: 0, maxDelayMs: 0 };
}
const SIGNUP_IP: ThrottleRule = {
  windowMs: HOUR,
  limit: 100,
  freeAttempts: 20,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
};

/**
 * Login and sign-up attempt limits, counted in the store so they hold across processes. An
 * attempt is counted before the password is checked, so a parallel burst cannot slip past a
 * limit; a successful login clears the counter it was counted on. Nothing locks for good: every
 * refusal ends by its `retryAfterSeconds`. Following OWASP's device-cookie scheme, a browser that
 * logged in to the account before is counted on its own counter, and everyone else per account,
 * per IP and against a global ceiling.
 */
export class LoginThrottle {
  readonly account: ThrottleRule;
  readonly device: ThrottleRule;
  readonly ip: ThrottleRule;
  readonly global: ThrottleRule;
  readonly signupIp: ThrottleRule;
  readonly signupGlobal: ThrottleRule;
  private readonly rules: Record<RuleName, AttemptRule>;

  constructor(
    private readonly store: ThrottleStore,
    private readonly now: () => number,
    options: LoginThrottleOptions = {},
  ) {
    this.account = { ...ACCOUNT, ...options.account };
    this.device = { ...ACCOUNT, ...options.device };
    this.ip = { ...IP, ...options.ip };
    this.global = { ...rate(6000, MINUTE), ...options.global };
    this.signupIp = { ...SIGNUP_IP, ...options.signupIp };
    this.signupGlobal = { ...rate(300, MINUTE), ...options.signupGlobal };
    this.rules = {
      account: checkedRule('account', this.account),
      device: checkedRule('device', this.device),
      ip: checkedRule('ip', this.ip),
      global: checkedRule('global', this.global),
      signupIp: checkedRule('signupIp', this.signupIp),
      signupGlobal: checkedRule('signupGlobal', this.signupGlobal),
    };
  }

  /**
   * Counts one login attempt for `usernameKey` from `ip`, or refuses it. `device` is the verified
   * device id of the request's device cookie for this account, or null (an untrusted client).
   */
  attempt(usernameKey: string, ip: string | null, device: string | null = null) {
    if (device !== null) return this.consume([[keyOf('device', device), 'device']]);
    const checks: [string, RuleName][] = [[accountKey(usernameKey), 'account']];
    if (ip) checks.push([keyOf('ip', ipBucket(ip)), 'ip']);
    checks.push(['login:global', 'global']);
    return this.consume(checks);
  }

  /** Clears the counter a successful login was counted on: its device's, or its account's. */
  succeeded(usernameKey: string, device: string | null = null): Promise<void> {
    return this.store.resetAttempts(
      device === null ? accountKey(usernameKey) : keyOf('device', device),
    );
  }

  /** Counts one sign-up from `ip`, or refuses it. */
  signup(ip: string | null): Promise<ThrottleOutcome> {
    const checks: [string, RuleName][] = [];
    if (ip) checks.push([keyOf('signup-ip', ipBucket(ip)), 'signupIp']);
    checks.push(['signup:global', 'signupGlobal']);
    return this.consume(checks);
  }

  private async consume(checks: readonly [string, RuleName][]): Promise<ThrottleOutcome> {
    const now = this.now();
    for (const [key, name] of checks) {
      const decision = await this.store.consumeAttempt(key, now, this.rules[name]);
      if (!decision.allowed) {
        return {
          allowed: false,
          retryAfterSeconds: Math.max(1, Math.ceil((decision.retryAt - now) / 1000)),
        };
      }
    }
    return { allowed: true };
  }
}

type RuleName = 'account' | 'device' | 'ip' | 'global' | 'signupIp' | 'signupGlobal';

function accountKey(usernameKey: string): string {
  return keyOf('account', usernameKey);
}

/** Keys are hashed: people type passwords into the username field, and stores are not secret. */
function keyOf(kind: string, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 32)}`;
}

/**
 * What per-IP limits count by: an IPv4 address as is, an IPv6 address by its /64 (one
 * subscriber's whole prefix; one host can use 2^64 addresses). IPv4-mapped IPv6 is IPv4.
 */
export function ipBucket(ip: string): string {
  const address = ip.trim().toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)?.[1];
  if (mapped !== undefined) return mapped;
  if (isIP(address) !== 6) return address;
  return `${hextets(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address, without leading zeros. */
function hextets(address: string): string[] {
  let text = address;
  // A trailing embedded IPv4 address (`64:ff9b::192.0.2.1`) is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...(tail === undefined ? [] : zeros), ...right].map((group) =>
    Number.parseInt(group, 16).toString(16),
  );
}

/**
 * The backoff policy as the store applies it: no wait for the free attempts, then `baseDelayMs`
 * doubling with each further attempt up to `maxDelayMs`. The policy lives here alone; a store
 * only counts and looks the wait up.
 */
export function attemptRuleOf(rule: ThrottleRule): AttemptRule {
  const delays: number[] = [];
  let delay = rule.baseDelayMs;
  while (delay > 0 && delay < rule.maxDelayMs && delays.length < 64) {
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

/**
 * {@link attemptRuleOf}, refusing a rule whose limit is a promise it cannot keep: when the delays
 * alone keep a client under `limit` per window, the documented limit would never be the one
 * that binds (the old default, 60 s delays, allowed about 70 per hour, not the 100 it said).
 */
function checkedRule(name: RuleName, rule: ThrottleRule): AttemptRule {
  const valid = (value: number) => Number.isFinite(value) && value >= 0;
  if (
    !Number.isInteger(rule.limit) ||
    rule.limit < 1 ||
    !valid(rule.windowMs) ||
    rule.windowMs === 0 ||
    !valid(rule.freeAttempts) ||
    !valid(rule.baseDelayMs) ||
    !valid(rule.maxDelayMs) ||
    rule.baseDelayMs > rule.maxDelayMs
  ) {
    throw new ConfigError(
      `throttle.${name}: limit must be a positive integer, windowMs positive, freeAttempts and delays >= 0, baseDelayMs <= maxDelayMs`,
    );
  }
  const attemptRule = attemptRuleOf(rule);
  const reachedAt = timeToLimit(attemptRule);
  if (reachedAt >= rule.windowMs) {
    throw new ConfigError(
      `throttle.${name}: ${rule.limit} attempts per ${rule.windowMs} ms cannot be reached: the delays alone space them over ${reachedAt} ms; lower maxDelayMs or the limit`,
    );
  }
  return attemptRule;
}

/** How long after a window's first attempt its `limit`-th attempt is allowed, at the earliest. */
function timeToLimit(rule: AttemptRule): number {
  let elapsed = 0;
  for (let count = Math.max(1, rule.freeAttempts); count < rule.limit; count++) {
    elapsed += rule.delays[Math.min(count - rule.freeAttempts, rule.delays.length - 1)] ?? 0;
    if (elapsed >= rule.windowMs) break;
  }
  return elapsed;
}
