/** Row 15.4: a recovery code is compared with the stored hashes in constant time. */
import { Latchkey, MemoryStore } from 'latchkey';
import { describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../helpers/clock.js';

const compared = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:crypto', async (original) => {
  const crypto = await original<typeof import('node:crypto')>();
  return {
    ...crypto,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.count++;
      return crypto.timingSafeEqual(a, b);
    },
  };
});

describe('15.4: constant-time comparison', () => {
  it('a recovery code is checked against every stored hash with timingSafeEqual', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const auth = new Latchkey({
      store,
      users: store,
      secondFactor: { store, secretKey: 'k'.repeat(32) },
      clock: clock.now,
    });
    const factors = auth.secondFactors;
    if (!factors) throw new Error('second factors are off');
    const user = await auth.createUser('ada', 'correct horse battery');
    const codes = await factors.regenerateRecoveryCodes(user.id);
    compared.count = 0;
    const wrong = 'A'.repeat(16);
    expect(await factors.checkCode(user.id, { type: 'recovery', code: wrong })).toMatchObject({
      ok: false,
    });
    // Every one of the ten hashes was compared, not only up to a match.
    expect(compared.count).toBe(10);
    compared.count = 0;
    expect(await factors.checkCode(user.id, { type: 'recovery', code: codes[3] })).toMatchObject({
      ok: true,
    });
    expect(compared.count).toBe(10);
  });
});
