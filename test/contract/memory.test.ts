import { MemoryStore } from 'latchkey';
import { describe, expect, it } from 'vitest';
import { describeRememberStore } from './remember-store-contract.js';
import { describeSessionStore, record } from './session-store-contract.js';
import { describeThrottleStore } from './throttle-store-contract.js';
import { describeUserStore } from './user-store-contract.js';

const memory = { open: async () => new MemoryStore() };
describeSessionStore('memory', memory);
describeUserStore('memory', memory);
describeThrottleStore('memory', memory);
describeRememberStore('memory', memory);

describe('MemoryStore bounds', () => {
  it('at maxSessions the record closest to expiry makes room', async () => {
    const store = new MemoryStore({ maxSessions: 3 });
    const soonest = record({ idleExpiresAt: Date.UTC(2026, 0, 1, 0, 5) });
    const [a, b, c] = [record(), record(), record()];
    for (const r of [a, soonest, b, c]) await store.create(r);
    expect(store.size).toBe(3);
    expect(await store.get(soonest.id)).toBeNull();
    expect(await store.get(c.id)).toEqual(c);
  });

  it('rejects a bound that is not a positive whole number', () => {
    expect(() => new MemoryStore({ maxSessions: 0 })).toThrow(/maxSessions/);
  });

  it('a touched record survives a sweep past its old deadline', async () => {
    const store = new MemoryStore();
    const start = Date.UTC(2026, 0, 1);
    const records = Array.from({ length: 1000 }, (_, i) =>
      record({ idleExpiresAt: start + 1000 + i }),
    );
    for (const r of records) await store.create(r);
    for (const r of records.slice(0, 500)) await store.touch(r.id, start, start + 10_000_000);
    expect(await store.deleteExpired(start + 5000)).toBe(500);
    expect(store.size).toBe(500);
  });
});
