import { randomBytes } from 'node:crypto';
import type { JsonObject, JsonValue, SessionRecord, SessionStore } from 'latchkey';
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

/** JSON with object keys sorted: equal strings mean equal values, whatever key order a store keeps. */
function canonical(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k] as JsonValue)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Builds an object with own properties only (a key named "__proto__" stays data). */
function object(entries: [string, JsonValue][]): JsonObject {
  return Object.fromEntries(entries);
}

const BOUND = 8192;

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

    it('updateData: 100 parallel updates of distinct keys all land; nothing else changes', async () => {
      const created = record({ data: { keep: 'me' } });
      await store.create(created);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.updateData(created.id, { set: { [`k${i}`]: i }, remove: [], maxBytes: BOUND }),
        ),
      );
      expect(results).toEqual(Array(100).fill('updated'));
      const data: JsonObject = { keep: 'me' };
      for (let i = 0; i < 100; i++) data[`k${i}`] = i;
      expect(await store.get(created.id)).toEqual({ ...created, data });
    });

    it('updateData: parallel sets and removals of different keys never lose one another', async () => {
      const initial = object(Array.from({ length: 50 }, (_, i) => [`old${i}`, [i]]));
      const created = record({ data: initial });
      await store.create(created);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.updateData(created.id, {
            set: { [`new${i}`]: { i } },
            remove: [`old${i}`],
            maxBytes: BOUND,
          }),
        ),
      );
      const data = object(Array.from({ length: 50 }, (_, i) => [`new${i}`, { i }]));
      expect((await store.get(created.id))?.data).toEqual(data);
    });

    it('updateData: removes named keys, ignores absent ones, replaces values whole', async () => {
      const created = record({
        data: { a: 1, b: [1, 2], c: { deep: { x: 1, y: 2 } }, d: 'keep' },
      });
      await store.create(created);
      expect(
        await store.updateData(created.id, {
          set: { c: { deep: { x: 3 } }, e: null },
          remove: ['a', 'b', 'not-there'],
          maxBytes: BOUND,
        }),
      ).toBe('updated');
      const expected = { ...created, data: { c: { deep: { x: 3 } }, d: 'keep', e: null } };
      expect(await store.get(created.id)).toEqual(expected);
      expect(await store.listByUser(created.userId, T0)).toEqual([expected]);
      // An empty change writes nothing and still says the record is there.
      expect(await store.updateData(created.id, { set: {}, remove: [], maxBytes: BOUND })).toBe(
        'updated',
      );
      expect(await store.get(created.id)).toEqual(expected);
      expect(
        await store.updateData(created.id, { set: {}, remove: ['c', 'd', 'e'], maxBytes: BOUND }),
      ).toBe('updated');
      expect(await store.get(created.id)).toEqual({ ...created, data: {} });
    });

    it('updateData of an unknown or deleted id is "missing" and creates nothing', async () => {
      const ghost = record();
      const change = { set: { a: 1 }, remove: ['b'], maxBytes: BOUND };
      expect(await store.updateData(ghost.id, change)).toBe('missing');
      expect(await store.get(ghost.id)).toBeNull();
      const gone = record();
      await store.create(gone);
      await store.delete(gone.id);
      expect(await store.updateData(gone.id, change)).toBe('missing');
      expect(await store.get(gone.id)).toBeNull();
      expect(await store.listByUser(gone.userId, T0)).toEqual([]);
    });

    it('updateData keeps every JSON value exactly: nested arrays and objects, numbers, unicode', async () => {
      const tricky: JsonObject = {
        empty: [],
        emptyObject: {},
        nested: [[], {}, [1, [2, [3, { four: [] }]]], { a: { b: { c: [{}] } } }],
        numbers: [0.1 + 0.2, 1e21, -1.5e-7, 2 ** 53 - 1, 5e-324, 1.7976931348623157e308, -0.5, 0],
        text: 'Zoë 🦊 日本語 \u2028 "quoted" \\ back\\slash \n\t\u0001 é'.normalize('NFD'),
        flags: [true, false, null],
      };
      const keys = object([
        ['Zoë 🦊', 1],
        ['x"y', 2],
        ['a.b[0]', 3],
        ['$', 4],
        ['', 5],
        ['__proto__', { polluted: true }],
        ['back\\slash', 6],
      ]);
      const created = record({ data: { start: [1, 'x'] } });
      await store.create(created);
      const change = (set: JsonObject, remove: string[] = []) =>
        store.updateData(created.id, { set, remove, maxBytes: BOUND });
      expect(await change({ first: tricky })).toBe('updated');
      expect(await change(tricky, ['start'])).toBe('updated');
      expect(await change(keys)).toBe('updated');
      expect(await change({ first: tricky.nested as JsonValue }, ['$'])).toBe('updated');
      const { $: _removed, ...keptKeys } = keys;
      const expected = object([
        ...Object.entries(tricky),
        ...Object.entries(keptKeys),
        ['first', tricky.nested as JsonValue],
      ]);
      const got = await store.get(created.id);
      expect(got && canonical(got.data)).toBe(canonical(expected));
      expect(got?.data).toEqual(expected);
      expect(Object.getPrototypeOf(got?.data)).toBe(Object.prototype);
      expect(Object.hasOwn(got?.data ?? {}, '__proto__')).toBe(true);
      expect(got).toEqual({ ...created, data: expected });
    });

    it('updateData refuses to grow data past maxBytes, writing nothing; shrinking always works', async () => {
      const created = record({ data: { a: 'x'.repeat(200), b: 1 } });
      await store.create(created);
      const grow = { set: { c: 'y'.repeat(100) }, remove: [], maxBytes: 250 };
      expect(await store.updateData(created.id, grow)).toBe('too_large');
      expect(await store.get(created.id)).toEqual(created);
      // Still above the bound afterwards, but smaller: allowed.
      expect(
        await store.updateData(created.id, {
          set: { a: 'x'.repeat(190) },
          remove: [],
          maxBytes: 100,
        }),
      ).toBe('updated');
      expect(await store.updateData(created.id, { set: {}, remove: ['a'], maxBytes: 100 })).toBe(
        'updated',
      );
      expect(await store.get(created.id)).toEqual({ ...created, data: { b: 1 } });
      expect(
        await store.updateData(created.id, {
          set: { c: 'z'.repeat(20) },
          remove: [],
          maxBytes: 100,
        }),
      ).toBe('updated');
      expect((await store.get(created.id))?.data).toEqual({ b: 1, c: 'z'.repeat(20) });
    });

    it('updateData then touch: each keeps the other’s change', async () => {
      const created = record();
      await store.create(created);
      await Promise.all([
        store.updateData(created.id, { set: { cart: [1, 2] }, remove: [], maxBytes: BOUND }),
        store.touch(created.id, T0 + MINUTE, T0 + 31 * MINUTE),
      ]);
      expect(await store.get(created.id)).toEqual({
        ...created,
        lastSeenAt: T0 + MINUTE,
        idleExpiresAt: T0 + 31 * MINUTE,
        data: { cart: [1, 2] },
      });
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
