import { MemoryStore } from 'latchkey';
import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../src/core/throttle.js';
import { FakeClock } from '../helpers/clock.js';

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

  it('never allows more than 100 attempts per account per hour, whatever the delays', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now, { ip: { limit: 10_000 } });
    let allowed = 0;
    for (let minute = 0; minute < 60; minute++) {
      for (let i = 0; i < 10; i++)
        if ((await throttle.attempt('ada', `198.51.100.${i}`)).allowed) allowed++;
      clock.advance(60_000);
    }
    expect(allowed).toBeGreaterThan(50);
    expect(allowed).toBeLessThanOrEqual(100);
  });

  it('a success clears the account count', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    for (let i = 0; i < 5; i++) await throttle.attempt('ada', null);
    await throttle.succeeded('ada');
    expect((await throttle.attempt('ada', null)).allowed).toBe(true);
  });

  it('limits one IP spraying many accounts', async () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(new MemoryStore(), clock.now);
    const results = [];
    for (let i = 0; i < 105; i++)
      results.push((await throttle.attempt(`user${i}`, '203.0.113.9')).allowed);
    expect(results.filter(Boolean)).toHaveLength(100);
    expect((await throttle.attempt('user-other', '203.0.113.10')).allowed).toBe(true);
  });
});
