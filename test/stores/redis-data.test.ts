import type { SessionRecord } from 'latchkey';
import type { RedisStore } from 'latchkey/stores/redis';
import { record } from 'latchkey/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { type RedisFixture, useRedisStore } from '../helpers/redis-server.js';

const BOUND = 8192;

describe('RedisStore session data layout', () => {
  const redis = useRedisStore();
  let prefix = '';
  let store: RedisStore;
  let admin: RedisFixture['admin'];
  beforeEach(() => {
    ({ store, admin, prefix } = redis());
  });

  it('keeps one hash field per data key, each value as the JSON it was given', async () => {
    const created = record({ data: { list: [], n: 1e21 } });
    await store.create(created);
    await store.updateData(created.id, {
      set: { obj: {}, f: 0.30000000000000004 },
      remove: ['n'],
      maxBytes: BOUND,
    });
    const fields = await admin.hGetAll(`${prefix}s:${created.id}`);
    expect(Object.keys(fields).sort()).toEqual(
      ['c', 'd:f', 'd:list', 'd:obj', 'e', 'g', 'n', 'p', 'u', 'x'].sort(),
    );
    expect(fields['d:list']).toBe('[]');
    expect(fields['d:obj']).toBe('{}');
    expect(fields['d:f']).toBe('0.30000000000000004');
  });

  it('updates the data of a record in the layout before the compact one', async () => {
    const earlier = record({ data: { kept: 1, gone: 2 } });
    const key = `${prefix}s:${earlier.id}`;
    const { data, ...rest } = earlier;
    await admin.hSet(key, {
      record: JSON.stringify({ ...rest, data: {} }),
      userId: earlier.userId,
      lastSeenAt: String(earlier.lastSeenAt),
      idleExpiresAt: String(earlier.idleExpiresAt),
      'd:kept': '1',
      'd:gone': '2',
    });
    await admin.pExpire(key, 60_000);
    expect(
      await store.updateData(earlier.id, { set: { c: 3 }, remove: ['gone'], maxBytes: BOUND }),
    ).toBe('updated');
    expect(await store.get(earlier.id)).toEqual({ ...earlier, data: { kept: 1, c: 3 } });
    await store.touch(earlier.id, earlier.lastSeenAt + 1, earlier.idleExpiresAt + 1);
    expect(await store.get(earlier.id)).toMatchObject({
      lastSeenAt: earlier.lastSeenAt + 1,
      idleExpiresAt: earlier.idleExpiresAt + 1,
      data: { kept: 1, c: 3 },
    });
    expect(data).toEqual({ kept: 1, gone: 2 });
  });

  it('reads and converts a record written before data had fields of its own', async () => {
    const older: SessionRecord = record({ data: { a: [1, { b: [] }], gone: 'soon' } });
    const key = `${prefix}s:${older.id}`;
    await admin.hSet(key, {
      record: JSON.stringify(older),
      userId: older.userId,
      lastSeenAt: String(older.lastSeenAt),
      idleExpiresAt: String(older.idleExpiresAt),
    });
    await admin.pExpire(key, 60_000);
    expect(await store.get(older.id)).toEqual(older);
    expect(
      await store.updateData(older.id, { set: { c: 3 }, remove: ['gone'], maxBytes: BOUND }),
    ).toBe('updated');
    expect(await store.get(older.id)).toEqual({ ...older, data: { a: [1, { b: [] }], c: 3 } });
    const fields = await admin.hGetAll(key);
    expect(fields['d:a']).toBe('[1,{"b":[]}]');
    expect(fields['d:gone']).toBeUndefined();
    expect(JSON.parse(fields.record as string).data).toEqual({});
    expect(await admin.pTTL(key)).toBeGreaterThan(0);
  });

  it('create over an existing id leaves none of the old data fields behind', async () => {
    const first = record({ data: { old: 1 } });
    await store.create(first);
    const again = { ...first, data: { fresh: 2 } };
    await store.create(again);
    expect((await store.get(first.id))?.data).toEqual({ fresh: 2 });
  });
});
