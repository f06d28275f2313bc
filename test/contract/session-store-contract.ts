import { randomBytes } from 'node:crypto';
import type { SessionRecord, SessionStore } from 'latchkey';
import { beforeEach, describe, expect, it } from 'vitest';
import { type StoreHarness, useStore } from './harness.js';

export type { StoreHarness } from './harness.js';

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

export function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const createdAt = overrides.createdAt ?? T0;
  return {
    id: randomBytes(32).toString('base64url'),
    userId: 'user-1',
    createdAt,
    lastSeenAt: createdAt,
    idleExpiresAt: createdAt + 30 * MINUTE,
    absoluteExpiresAt: createdAt + 720 * MINUTE,
    authenticatedAt: createdAt,
    ip: '127.0.0.1',
    userAgent: 'Mozilla/5.0 (contract test)',
    user: { name: 'Ada', roles: ['admin'], nested: { ok: true, n: 1.5 } },
    data: {},
    ...overrides,
  };
}

/** The one contract every SessionStore passes: each case runs against each store. */
export function describeSessionStore(name: string, harness: StoreHarness<SessionStore>): void {
  describe(`SessionStore contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: SessionStore;
    beforeEach(() => {
      store = current();
    });

    it('create then get returns the same record, JSON fields included', async () => {
      const created = record({
        user: { name: 'Zoë 🦊', tags: ['a', 'b'] },
        data: { theme: 'dark' },
      });
      expect(await store.create(created)).toEqual({ created: true, evicted: [] });
      expect(await store.get(created.id)).toEqual(created);
    });

    it('null ip and user agent round-trip as null', async () => {
      const created = record({ ip: null, userAgent: null });
      await store.create(created);
      expect(await store.get(created.id)).toEqual(created);
    });

    it('get of an unknown id is null, not an error', async () => {
      expect(await store.get(randomBytes(32).toString('base64url'))).toBeNull();
    });

    it('get returns a record past its expiry so the core can delete it', async () => {
      const dead = record({
        createdAt: Date.now() - 10 * MINUTE,
        idleExpiresAt: Date.now() + 2_000,
      });
      await store.create(dead);
      expect((await store.get(dead.id))?.id).toBe(dead.id);
    });

    it('touch moves lastSeenAt and idleExpiresAt and nothing else', async () => {
      const created = record();
      await store.create(created);
      await store.touch(created.id, T0 + MINUTE, T0 + 31 * MINUTE);
      expect(await store.get(created.id)).toEqual({
        ...created,
        lastSeenAt: T0 + MINUTE,
        idleExpiresAt: T0 + 31 * MINUTE,
      });
    });

    it('touch of a missing id does not create it', async () => {
      const ghost = record();
      await store.touch(ghost.id, T0 + MINUTE, T0 + 31 * MINUTE);
      expect(await store.get(ghost.id)).toBeNull();
    });

    it('delete removes the record and reports whether it existed', async () => {
      const created = record();
      await store.create(created);
      expect(await store.delete(created.id)).toBe(true);
      expect(await store.get(created.id)).toBeNull();
      expect(await store.delete(created.id)).toBe(false);
    });

    it('listByUser gives only that user’s live records, oldest first', async () => {
      const older = record({ createdAt: T0 });
      const newer = record({ createdAt: T0 + MINUTE });
      const dead = record({ createdAt: T0 - 60 * MINUTE, idleExpiresAt: T0 + 5 * MINUTE });
      const other = record({ userId: 'user-2' });
      for (const r of [newer, dead, other, older]) await store.create(r);
      const listed = await store.listByUser('user-1', T0 + 10 * MINUTE);
      expect(listed.map((r) => r.id)).toEqual([older.id, newer.id]);
      expect(listed[0]).toEqual(older);
      expect(await store.listByUser('nobody', T0)).toEqual([]);
    });

    it('deleteByUser deletes all of the user’s records except the one named', async () => {
      const keep = record();
      const drop1 = record({ createdAt: T0 + 1 });
      const drop2 = record({ createdAt: T0 + 2 });
      const other = record({ userId: 'user-2' });
      for (const r of [keep, drop1, drop2, other]) await store.create(r);
      expect(await store.deleteByUser('user-1', keep.id)).toBe(2);
      expect(await store.get(keep.id)).toEqual(keep);
      expect(await store.get(drop1.id)).toBeNull();
      expect(await store.get(drop2.id)).toBeNull();
      expect(await store.get(other.id)).toEqual(other);
      expect(await store.deleteByUser('user-1')).toBe(1);
      expect(await store.get(keep.id)).toBeNull();
      expect(await store.deleteByUser('user-1')).toBe(0);
    });

    it('deleteExpired deletes exactly the dead records and counts them', async () => {
      const now = Date.now();
      const live = record({ createdAt: now, idleExpiresAt: now + 30 * MINUTE });
      const touched = record({ createdAt: now - 40 * MINUTE, idleExpiresAt: now + 20 * MINUTE });
      const dead1 = record({ createdAt: now - 40 * MINUTE, idleExpiresAt: now + 1_000 });
      const dead2 = record({
        userId: 'user-2',
        createdAt: now - 40 * MINUTE,
        idleExpiresAt: now + 2_000,
      });
      for (const r of [live, touched, dead1, dead2]) await store.create(r);
      // The touched record was about to die; its new deadline must keep it.
      await store.touch(touched.id, now, now + 30 * MINUTE);
      expect(await store.deleteExpired(now + 5_000)).toBe(2);
      expect(await store.get(dead1.id)).toBeNull();
      expect(await store.get(dead2.id)).toBeNull();
      expect((await store.get(live.id))?.id).toBe(live.id);
      expect((await store.get(touched.id))?.id).toBe(touched.id);
      expect(await store.deleteExpired(now + 5_000)).toBe(0);
    });

    it('a cap with evict-oldest deletes the oldest live sessions and names them', async () => {
      const cap = { max: 2, policy: 'evict-oldest' } as const;
      const first = record({ createdAt: T0 });
      const second = record({ createdAt: T0 + 1 });
      const third = record({ createdAt: T0 + 2 });
      await store.create(first, cap);
      await store.create(second, cap);
      expect(await store.create(third, cap)).toEqual({ created: true, evicted: [first.id] });
      const ids = (await store.listByUser('user-1', T0 + 3)).map((r) => r.id);
      expect(ids).toEqual([second.id, third.id]);
    });

    it('a cap with reject creates nothing at the limit', async () => {
      const cap = { max: 1, policy: 'reject' } as const;
      const first = record();
      const second = record({ createdAt: T0 + 1 });
      expect(await store.create(first, cap)).toEqual({ created: true, evicted: [] });
      expect(await store.create(second, cap)).toEqual({ created: false, evicted: [] });
      expect(await store.get(second.id)).toBeNull();
      expect(await store.get(first.id)).toEqual(first);
    });

    it('a cap counts only live sessions', async () => {
      const cap = { max: 1, policy: 'reject' } as const;
      const dead = record({ createdAt: T0 - 60 * MINUTE, idleExpiresAt: T0 - MINUTE });
      await store.create(dead);
      const fresh = record();
      expect(await store.create(fresh, cap)).toEqual({ created: true, evicted: [] });
    });

    it('concurrent creates for one user never exceed the cap (evict-oldest)', async () => {
      const cap = { max: 3, policy: 'evict-oldest' } as const;
      const records = Array.from({ length: 25 }, (_, i) => record({ createdAt: T0 + i }));
      await Promise.all(records.map((r) => store.create(r, cap)));
      const live = await store.listByUser('user-1', T0 + 100);
      expect(live).toHaveLength(3);
    });

    it('concurrent creates for one user never exceed the cap (reject)', async () => {
      const cap = { max: 3, policy: 'reject' } as const;
      const records = Array.from({ length: 25 }, (_, i) => record({ createdAt: T0 + i }));
      const results = await Promise.all(records.map((r) => store.create(r, cap)));
      expect(results.filter((r) => r.created)).toHaveLength(3);
      expect(await store.listByUser('user-1', T0 + 100)).toHaveLength(3);
    });

    it('unicode and 255-character user ids work for get, list and delete', async () => {
      const ids = ['Zoë-日本語-🦊', 'é'.normalize('NFD'), 'x'.repeat(255), '𝔘'.repeat(255)];
      for (const userId of ids) {
        const created = record({ userId });
        await store.create(created);
        expect(await store.get(created.id)).toEqual(created);
        expect((await store.listByUser(userId, T0)).map((r) => r.id)).toEqual([created.id]);
      }
      // NFC and NFD spellings are different ids to a store: normalising is the app's job.
      expect(await store.listByUser('é'.normalize('NFC'), T0)).toEqual([]);
      expect(await store.deleteByUser(ids[0] as string)).toBe(1);
    });

    it('lists 10,000 sessions of one user', async () => {
      const many = Array.from({ length: 10_000 }, (_, i) =>
        record({ createdAt: T0 + i, data: {} }),
      );
      for (let i = 0; i < many.length; i += 500) {
        await Promise.all(many.slice(i, i + 500).map((r) => store.create(r)));
      }
      const listed = await store.listByUser('user-1', T0);
      expect(listed).toHaveLength(10_000);
      expect(listed[0]?.id).toBe(many[0]?.id);
      expect(listed[9_999]?.id).toBe(many[9_999]?.id);
      expect(await store.deleteByUser('user-1')).toBe(10_000);
    });
  });
}
