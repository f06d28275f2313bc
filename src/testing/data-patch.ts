import { beforeEach, describe, expect, it } from 'vitest';
import { hasCapability, type SessionDataPatch } from '../core/capabilities.js';
import type { JsonObject, JsonValue, SessionStore } from '../core/store.js';
import { type StoreHarness, useStore } from './harness.js';
import { canonical, MINUTE, object, record, T0 } from './records.js';

const BOUND = 8192;

/** The "data patch" capability: atomic top-level changes to a session's `data`. */
export function describeDataPatch<S extends SessionStore & SessionDataPatch>(
  name: string,
  harness: StoreHarness<S>,
): void {
  describe(`SessionDataPatch contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: S;
    beforeEach(() => {
      store = current();
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
      if (hasCapability(store, 'session index')) {
        expect(await store.listByUser(created.userId, T0)).toEqual([expected]);
      }
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
      if (hasCapability(store, 'session index')) {
        expect(await store.listByUser(gone.userId, T0)).toEqual([]);
      }
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
  });
}
