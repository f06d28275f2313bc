import { ConfigError, MemoryStore } from 'latchkey';
import { describe, expect, it } from 'vitest';
import { ipBucket, LoginThrottle, type ThrottleOutcome } from '../../src/core/throttle.js';
import { FakeClock } from '../helpers/clock.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * Attempts on one rule as fast as the throttle allows, for one whole window from the first
 * attempt: the offsets (ms) at which attempts were allowed, and the refusal at the end. A
 * refused attempt waits exactly its Retry-After.
 */
async function drive(
  clock: FakeClock,
  windowMs: number,
  attempt: (n: number) => Promise<ThrottleOutcome>,
): Promise<{ allowedAt: number[]; last: ThrottleOutcome }> {
  const start = clock.time;
  const allowedAt: number[] = [];
  let last: ThrottleOutcome = { allowed: true };
  for (let n = 0; clock.time < start + windowMs - 1000; n++) {
    last = await attempt(n);
    if (last.allowed) allowedAt.push(clock.time - start);
    else clock.advance(last.retryAfterSeconds * 1000);
  }
  return { allowedAt, last };
}

/** The waits between consecutive allowed attempts, in seconds. */
function gaps(allowedAt: readonly number[]): number[] {
  return allowedAt.slice(1).map((at, i) => (at - (allowedAt[i] as number)) / 1000);
}

/** Checks a seconds-delay rule as documented: free back to back, then doubling to a cap, and the hourly limit binds. */
async function expectDocumentedRule(
  attempt: (n: number) => Promise<ThrottleOutcome>,
  clock: FakeClock,
  rule: { free: number; delays: number[]; limit: number },
): Promise<void> {
  const start = clock.time;
  const { allowedAt } = await drive(clock, HOUR, attempt);
  // The limit is what binds: exactly `limit` in the hour, though the delays would allow more.
  expect(allowedAt).toHaveLength(rule.limit);
  expect(allowedAt.slice(0, rule.free)).toEqual(Array(rule.free).fill(0));
  const expected = [...rule.delays];
  while (expected.length < rule.limit - rule.free) expected.push(rule.delays.at(-1) as number);
  expect(gaps(allowedAt).slice(rule.free - 1)).toEqual(expected);
  // Past the limit the refusal lasts until the window's end, then attempts are allowed again.
  clock.time = start + HOUR - 1000;
  const refused = await attempt(-1);
  expect(refused).toEqual({ allowed: false, retryAfterSeconds: 1 });
  clock.time = start + HOUR;
  expect((await attempt(-2)).allowed).toBe(true);
}

describe('LoginThrottle', () => {
  it('refuses with an increasing delay after the free attempts, then lets the user in again', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    for (let i = 0; i < 5; i++)
      expect(await throttle.attempt('ada', '192.0.2.1')).toEqual({ allowed: true });
    expect(await throttle.attempt('ada', '192.0.2.1')).toEqual({
      allowed: false,
      retryAfterSeconds: 1,
    });
    clock.advance(1000);
    expect((await throttle.attempt('ada', '192.0.2.1')).allowed).toBe(true);
    expect(await throttle.attempt('ada', '192.0.2.1')).toEqual({
      allowed: false,
      retryAfterSeconds: 2,
    });
    // Another account from another IP is not affected.
    expect((await throttle.attempt('grace', '192.0.2.2')).allowed).toBe(true);
  });

  it('account (documented: 5 back to back, then 1 s doubling to 30 s, 100 per hour): each part binds, the hourly limit included', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    // Rotating addresses: only the account rule is in play.
    await expectDocumentedRule(
      (n) => throttle.attempt('ada', `198.51.${(n >> 8) & 255}.${n & 255}`),
      clock,
      { free: 5, delays: [1, 2, 4, 8, 16, 30], limit: 100 },
    );
  });

  it('device (documented: as the account rule, on its own counter): each part binds', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    await expectDocumentedRule(() => throttle.attempt('ada', '192.0.2.1', 'device-1'), clock, {
      free: 5,
      delays: [1, 2, 4, 8, 16, 30],
      limit: 100,
    });
  });

  it('a trusted device is not held back by the account counter strangers filled, nor they by its', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    for (let i = 0; i < 5; i++) await throttle.attempt('ada', `203.0.113.${i}`);
    expect((await throttle.attempt('ada', '203.0.113.99')).allowed).toBe(false);
    expect((await throttle.attempt('ada', '192.0.2.1', 'device-1')).allowed).toBe(true);
    for (let i = 0; i < 5; i++) await throttle.attempt('ada', '192.0.2.1', 'device-2');
    expect((await throttle.attempt('ada', '192.0.2.1', 'device-2')).allowed).toBe(false);
    expect((await throttle.attempt('ada', '192.0.2.1', 'device-3')).allowed).toBe(true);
  });

  it('ip (documented: 100 back to back, then 100 ms doubling to 3 s, 1,000 per hour): the hourly limit binds', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    const start = clock.time;
    const { allowedAt } = await drive(clock, HOUR, (n) =>
      throttle.attempt(`user${n}`, '203.0.113.9'),
    );
    expect(allowedAt).toHaveLength(1000);
    expect(allowedAt.slice(0, 100)).toEqual(Array(100).fill(0));
    // Retry-After is in whole seconds: the 100 ms to 1.6 s waits round up to 1 or 2 s.
    expect(gaps(allowedAt).slice(99, 106)).toEqual([1, 1, 1, 1, 2, 3, 3]);
    expect(Math.max(...gaps(allowedAt))).toBe(3);
    clock.time = start + HOUR - 1000;
    expect((await throttle.attempt('user-x', '203.0.113.9')).allowed).toBe(false);
    expect((await throttle.attempt('user-x', '203.0.113.10')).allowed).toBe(true);
  });

  it('global (documented: 6,000 login attempts per minute without a device cookie): binds', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    let allowed = 0;
    for (let n = 0; n < 6001; n++) {
      if (
        (await throttle.attempt(`user${n}`, `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`)).allowed
      )
        allowed++;
    }
    expect(allowed).toBe(6000);
    // A trusted device is not held by the ceiling strangers reached.
    expect((await throttle.attempt('ada', '192.0.2.1', 'device-1')).allowed).toBe(true);
    clock.advance(MINUTE);
    expect((await throttle.attempt('late', '192.0.2.7')).allowed).toBe(true);
  }, 60_000);

  it('signupIp (documented: 20 back to back, then 1 s doubling to 30 s, 100 per hour): each part binds', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    await expectDocumentedRule(() => throttle.signup('203.0.113.9'), clock, {
      free: 20,
      delays: [1, 2, 4, 8, 16, 30],
      limit: 100,
    });
  });

  it('signupGlobal (documented: 300 sign-ups per minute): binds', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    let allowed = 0;
    for (let n = 0; n < 301; n++) {
      if ((await throttle.signup(`10.0.${n >> 8}.${n & 255}`)).allowed) allowed++;
    }
    expect(allowed).toBe(300);
    expect(await throttle.signup('192.0.2.1')).toEqual({ allowed: false, retryAfterSeconds: 60 });
    clock.advance(MINUTE);
    expect((await throttle.signup('192.0.2.1')).allowed).toBe(true);
  });

  it('refuses a rule whose delays would keep its limit from ever binding', () => {
    const store = new MemoryStore();
    // The old default: 60 s delays reach about 70 per hour, never the 100 it promised.
    expect(() => new LoginThrottle(store, Date.now, { account: { maxDelayMs: 60_000 } })).toThrow(
      ConfigError,
    );
    expect(() => new LoginThrottle(store, Date.now, { ip: { limit: 10_000 } })).toThrow(
      /throttle\.ip: 10000 attempts/,
    );
    expect(() => new LoginThrottle(store, Date.now, { global: { limit: 0 } })).toThrow(ConfigError);
    expect(
      () =>
        new LoginThrottle(store, Date.now, {
          ip: { limit: 10_000, baseDelayMs: 0, maxDelayMs: 0 },
        }),
    ).not.toThrow();
  });

  it('a success clears the account count', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    for (let i = 0; i < 5; i++) await throttle.attempt('ada', null);
    await throttle.succeeded('ada');
    expect((await throttle.attempt('ada', null)).allowed).toBe(true);
  });

  it('per-IP limits count an IPv6 client by its /64', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now, { ip: { freeAttempts: 3 } });
    const sameNetwork = ['2001:db8:1:2::1', '2001:DB8:1:2:ffff::9', '2001:db8:0001:0002:0:0:0:42'];
    for (const [i, ip] of sameNetwork.entries()) {
      expect((await throttle.attempt(`user${i}`, ip)).allowed).toBe(true);
    }
    expect((await throttle.attempt('user-x', '2001:db8:1:2:abcd::1')).allowed).toBe(false);
    expect((await throttle.attempt('user-y', '2001:db8:1:3::1')).allowed).toBe(true);
    expect(ipBucket('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(ipBucket('::1')).toBe('0:0:0:0::/64');
    expect(ipBucket('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(ipBucket('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
    expect(ipBucket('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(ipBucket('192.0.2.1')).toBe('192.0.2.1');
  });
});
