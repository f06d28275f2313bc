import { beforeEach, describe, expect, it } from 'vitest';
import type { SessionIndex } from '../core/capabilities.js';
import { Sessions } from '../core/sessions.js';
import type { SessionStore } from '../core/store.js';
import { type StoreHarness, useStore } from './harness.js';
import { MINUTE, record, T0 } from './records.js';

/** The "session index" capability: list, revoke-all and the atomic cap, per user. */
export function describeSessionIndex<S extends SessionStore & SessionIndex>(
  name: string,
  harness: StoreHarness<S>,
): void {
  describe(`SessionIndex contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: S;
    beforeEach(() => {
      store = current();
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

    it('listByUser sees a touch', async () => {
      const created = record();
      await store.create(created);
      await store.touch(created.id, T0 + MINUTE, T0 + 31 * MINUTE);
      expect(await store.listByUser('user-1', T0 + 30 * MINUTE + 1)).toEqual([
        { ...created, lastSeenAt: T0 + MINUTE, idleExpiresAt: T0 + 31 * MINUTE },
      ]);
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

    it('a deleted session leaves the index', async () => {
      const gone = record();
      const kept = record({ createdAt: T0 + 1 });
      await store.create(gone);
      await store.create(kept);
      await store.delete(gone.id);
      expect((await store.listByUser('user-1', T0)).map((r) => r.id)).toEqual([kept.id]);
      expect(await store.deleteByUser('user-1')).toBe(1);
    });

    it('createCapped creates under the cap and writes nothing at it', async () => {
      const first = record();
      const second = record({ createdAt: T0 + 1 });
      const third = record({ createdAt: T0 + 2 });
      expect(await store.createCapped(first, 2)).toBe(true);
      expect(await store.createCapped(second, 2)).toBe(true);
      expect(await store.createCapped(third, 2)).toBe(false);
      expect(await store.get(third.id)).toBeNull();
      expect(await store.get(first.id)).toEqual(first);
      expect((await store.listByUser('user-1', T0 + 3)).map((r) => r.id)).toEqual([
        first.id,
        second.id,
      ]);
      // Other users have caps of their own.
      expect(await store.createCapped(record({ userId: 'user-2' }), 2)).toBe(true);
    });

    it('createCapped counts only sessions alive at the new record’s creation', async () => {
      const dead = record({ createdAt: T0 - 60 * MINUTE, idleExpiresAt: T0 - MINUTE });
      await store.create(dead);
      const fresh = record();
      expect(await store.createCapped(fresh, 1)).toBe(true);
      expect(await store.get(fresh.id)).toEqual(fresh);
      expect(await store.createCapped(record({ createdAt: T0 + 1 }), 1)).toBe(false);
    });

    it('parallel createCapped for one user never passes the cap', async () => {
      const records = Array.from({ length: 25 }, (_, i) => record({ createdAt: T0 + i }));
      const results = await Promise.all(records.map((r) => store.createCapped(r, 3)));
      expect(results.filter((created) => created)).toHaveLength(3);
      expect(await store.listByUser('user-1', T0 + 100)).toHaveLength(3);
    });

    it('a revoke-all racing creates never misses a session that could already be read', async () => {
      // A record readable before deleteByUser started must be gone once both have finished: a
      // store that writes the record before its index entry lets a revoke-all in between miss it.
      // The revoke-all starts a few turns of the event loop after the create, so every interleaving
      // of the create's steps is met.
      const survivors: string[] = [];
      for (let round = 0; round < 60; round++) {
        const created = record({ createdAt: T0 + round });
        const creating = store.create(created);
        for (let turn = 0; turn < round % 6; turn++) await Promise.resolve();
        if (round % 2 === 1) await new Promise((resolve) => setImmediate(resolve));
        const seen = await store.get(created.id);
        await store.deleteByUser('user-1');
        await creating;
        if (seen !== null && (await store.get(created.id)) !== null) survivors.push(created.id);
      }
      expect(survivors).toEqual([]);
    });

    it('the engine’s evict-oldest: parallel logins for one user leave exactly the cap, all created', async () => {
      const sessions = new Sessions({ store, maxSessionsPerUser: 3, clock: () => T0 });
      const evicted: string[] = [];
      const engine = new Sessions({
        store,
        maxSessionsPerUser: 3,
        clock: () => T0 + 1,
        onEvent: (event) => {
          if (event.type === 'evicted') evicted.push(event.sessionId);
        },
      });
      const oldest = await Promise.all([1, 2, 3].map(() => sessions.create('user-1')));
      // Promise.all rejects if any create fails: all 25 are created.
      await Promise.all(Array.from({ length: 25 }, () => engine.create('user-1')));
      const live = await store.listByUser('user-1', T0 + 2);
      expect(live).toHaveLength(3);
      for (const session of live) expect(evicted).not.toContain(session.id);
      for (const { session } of oldest) {
        expect(await store.get(session.id)).toBeNull();
        expect(evicted).toContain(session.id);
      }
      // Each eviction is reported once, by the engine whose delete removed it.
      expect(new Set(evicted).size).toBe(evicted.length);
      expect(evicted).toHaveLength(25);
    });

    it('unicode and 255-character user ids work for list and delete', async () => {
      const ids = ['Zoë-日本語-🦊', 'é'.normalize('NFD'), 'x'.repeat(255), '𝔘'.repeat(255)];
      for (const userId of ids) {
        const created = record({ userId });
        await store.create(created);
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
