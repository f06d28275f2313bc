import { ConfigError, MemoryStore } from 'latchkey';
import { describeLatchkeyStore, record } from 'latchkey/testing';
import { describe, expect, it } from 'vitest';

const T0 = Date.UTC(2026, 0, 1);

// Every published suite. No `corrupt` hook: a memory record never leaves the process (the store
// writes each payload with JSON.stringify and reads it back itself), so there are no bytes an
// outsider could spoil; a hook would have to reach into private fields and would test only itself.
describeLatchkeyStore('memory', { open: async () => new MemoryStore() });

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

  it('a capped create at maxSessions also makes room, and counts toward the bound', async () => {
    const store = new MemoryStore({ maxSessions: 2 });
    const soonest = record({ userId: 'user-2', idleExpiresAt: T0 + 60_000 });
    const kept = record({ userId: 'user-3' });
    const capped = record();
    await store.create(soonest);
    await store.create(kept);
    expect(await store.createCapped(capped, 1)).toBe(true);
    expect(store.size).toBe(2);
    expect(await store.get(soonest.id)).toBeNull();
    expect(await store.get(capped.id)).toEqual(capped);
  });

  it('rejects a bound that is not a positive whole number, with a ConfigError', () => {
    for (const maxSessions of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new MemoryStore({ maxSessions })).toThrow(ConfigError);
      expect(() => new MemoryStore({ maxSessions })).toThrow(/maxSessions/);
    }
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

  it('many touches of few records (the heap is rebuilt) keep the sweep exact', async () => {
    const store = new MemoryStore();
    const records = Array.from({ length: 10 }, (_, i) => record({ idleExpiresAt: T0 + 1000 + i }));
    for (const r of records) await store.create(r);
    for (let round = 1; round <= 300; round++) {
      for (const r of records.slice(0, 5)) await store.touch(r.id, T0, T0 + 2000 + round);
    }
    expect(await store.deleteExpired(T0 + 1500)).toBe(5);
    expect(await store.deleteExpired(T0 + 2299)).toBe(0);
    expect(await store.deleteExpired(T0 + 2300)).toBe(5);
    expect(store.size).toBe(0);
  });
});

describe('MemoryStore ids', () => {
  it('ids of any other shape work for get, touch, list and delete', async () => {
    const store = new MemoryStore();
    const usual = record();
    // Too short, too long, not base64url, non-ASCII, and a usual id with stray low bits.
    const others = ['a', `${usual.id}A`, `${'!'.repeat(42)}x`, `${'é'.repeat(43)}`, ''].map((id) =>
      record({ id }),
    );
    const strayBits = record({
      id: `${usual.id.slice(0, 42)}${usual.id.endsWith('B') ? 'C' : 'B'}`,
    });
    for (const r of [usual, ...others, strayBits]) await store.create(r);
    for (const r of [usual, ...others, strayBits]) expect(await store.get(r.id)).toEqual(r);
    await store.touch('a', T0 + 1, T0 + 31 * 60_000);
    expect((await store.get('a'))?.lastSeenAt).toBe(T0 + 1);
    expect(await store.listByUser('user-1', T0)).toHaveLength(others.length + 2);
    expect(await store.delete('a')).toBe(true);
    expect(await store.get('a')).toBeNull();
    expect(await store.get(usual.id)).toEqual(usual);
    expect(await store.deleteByUser('user-1', usual.id)).toBe(others.length);
    expect(store.size).toBe(1);
  });

  it('two spellings of one id never meet: a last character with stray low bits is another id', async () => {
    const store = new MemoryStore();
    // 43 base64url characters carry 258 bits; the last 2 must be zero in a canonical id.
    const canonical = `${'A'.repeat(42)}E`;
    const stray = `${'A'.repeat(42)}F`;
    const created = record({ id: canonical });
    await store.create(created);
    expect(await store.get(stray)).toBeNull();
    expect(await store.delete(stray)).toBe(false);
    expect(await store.get(canonical)).toEqual(created);
  });

  it('the id index stays exact through growth and many deletions', async () => {
    const store = new MemoryStore();
    const records = Array.from({ length: 20_000 }, () => record());
    for (const r of records) await store.create(r);
    const deleted = records.filter((_, i) => i % 3 !== 0);
    for (const r of deleted) expect(await store.delete(r.id)).toBe(true);
    for (const [i, r] of records.entries()) {
      expect((await store.get(r.id))?.id ?? null, `record ${i}`).toBe(i % 3 === 0 ? r.id : null);
    }
    // Freed slots are reused by new ids, which the index finds as well.
    const fresh = Array.from({ length: 5_000 }, () => record());
    for (const r of fresh) await store.create(r);
    for (const r of fresh) expect((await store.get(r.id))?.id).toBe(r.id);
    expect(store.size).toBe(records.length - deleted.length + fresh.length);
  });

  it('creating an id that is already held replaces the record', async () => {
    const store = new MemoryStore();
    const first = record();
    const again = record({ id: first.id, userId: 'user-2', data: { again: true } });
    await store.create(first);
    await store.create(again);
    expect(store.size).toBe(1);
    expect(await store.get(first.id)).toEqual(again);
    expect(await store.listByUser('user-1', T0)).toEqual([]);
    expect(await store.listByUser('user-2', T0)).toEqual([again]);
  });

  it('close empties every role, and the store is usable again', async () => {
    const store = new MemoryStore();
    const created = record();
    await store.create(created);
    await store.close();
    expect(store.size).toBe(0);
    expect(await store.get(created.id)).toBeNull();
    await store.create(created);
    expect(await store.get(created.id)).toEqual(created);
  });
});
