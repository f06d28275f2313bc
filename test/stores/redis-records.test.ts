import type { RedisStore } from 'latchkey/stores/redis';
import { factor, record } from 'latchkey/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { type RedisFixture, useRedisStore } from '../helpers/redis-server.js';

/** A session's hash fields exactly as the versions before the compact record wrote them. */
function fieldsOf(session: ReturnType<typeof record>): Record<string, string> {
  const { data, ...rest } = session;
  const fields: Record<string, string> = {
    record: JSON.stringify({ ...rest, data: {} }),
    userId: session.userId,
    lastSeenAt: String(session.lastSeenAt),
    idleExpiresAt: String(session.idleExpiresAt),
  };
  for (const [key, value] of Object.entries(data)) fields[`d:${key}`] = JSON.stringify(value);
  return fields;
}

const valid = record({ data: { cart: [1, 2] } });
const json = JSON.parse(fieldsOf(valid).record as string) as Record<string, unknown>;
const recordWith = (changes: Record<string, unknown>) => JSON.stringify({ ...json, ...changes });

/** Hashes that are not a session: each must read as null, never as a partial record. */
const GARBLED: [string, Record<string, string>][] = [
  ['no record field', { userId: 'user-1', lastSeenAt: '1', idleExpiresAt: '2' }],
  ['a record that is not JSON', { ...fieldsOf(valid), record: '{"id":"x",' }],
  ['a record that is a number', { ...fieldsOf(valid), record: '5' }],
  ['a record that is null', { ...fieldsOf(valid), record: 'null' }],
  ['a record that is an array', { ...fieldsOf(valid), record: '[]' }],
  ['a record that is a string', { ...fieldsOf(valid), record: '"session"' }],
  ['a record without its id', { ...fieldsOf(valid), record: recordWith({ id: undefined }) }],
  ['a record whose userId is a number', { ...fieldsOf(valid), record: recordWith({ userId: 7 }) }],
  [
    'a record whose createdAt is text',
    { ...fieldsOf(valid), record: recordWith({ createdAt: 'x' }) },
  ],
  ['a record whose user is an array', { ...fieldsOf(valid), record: recordWith({ user: [] }) }],
  ['a record whose ip is a number', { ...fieldsOf(valid), record: recordWith({ ip: 1 }) }],
  ['a record whose data is a list', { ...fieldsOf(valid), record: recordWith({ data: [1] }) }],
  ['no lastSeenAt', { ...fieldsOf(valid), lastSeenAt: '' }],
  ['an idleExpiresAt that is not a number', { ...fieldsOf(valid), idleExpiresAt: 'soon' }],
  ['a data field that is not JSON', { ...fieldsOf(valid), 'd:cart': '[1,' }],
  ['compact: no user id', compactWith({ u: undefined })],
  ['compact: a createdAt that is text', compactWith({ c: 'x' })],
  ['compact: no idleExpiresAt', compactWith({ i: undefined })],
  ['compact: an empty authenticatedAt', compactWith({ t: '' })],
  ['compact: a user that is not JSON', compactWith({ n: '{"name":' })],
  ['compact: a user that is an array', compactWith({ n: '[]' })],
  ['compact: no user', compactWith({ n: undefined })],
  ['compact: a user without its id that is not JSON', compactWith({ n: undefined, o: '{"a":' })],
  ['compact: a user without its id that is a list', compactWith({ n: undefined, o: '[1]' })],
  ['compact: a data field that is not JSON', compactWith({ 'd:cart': '[1,' })],
  ['compact: a level of 3', compactWith({ v: '3' })],
  ['offsets: no absoluteExpiresAt', offsetWith({ x: undefined })],
  ['offsets: an idleExpiresAt that is text', offsetWith({ e: 'soon' })],
  ['offsets: an empty lastSeenAt', offsetWith({ s: '' })],
  ['offsets: no createdAt', offsetWith({ c: undefined })],
  ['compact: an unknown method', compactWith({ m: 'pwd sms' })],
  ['a record whose amr is text', { ...fieldsOf(valid), record: recordWith({ amr: 'pwd' }) }],
  ['a record whose aal is 0', { ...fieldsOf(valid), record: recordWith({ aal: 0 }) }],
];

/** The compact fields of `valid` with `changes` (undefined: the field left out). */
function compactWith(changes: Record<string, string | undefined>): Record<string, string> {
  const fields: Record<string, string | undefined> = {
    u: valid.userId,
    c: String(valid.createdAt),
    l: String(valid.lastSeenAt),
    i: String(valid.idleExpiresAt),
    a: String(valid.absoluteExpiresAt),
    t: String(valid.authenticatedAt),
    n: JSON.stringify(valid.user),
    'd:cart': '[1,2]',
    ...changes,
  };
  return Object.fromEntries(
    Object.entries(fields).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** The offset fields this version writes for `valid`, with `changes` (undefined: left out). */
function offsetWith(changes: Record<string, string | undefined>): Record<string, string> {
  return compactWith({
    l: undefined,
    i: undefined,
    a: undefined,
    t: undefined,
    e: String(valid.idleExpiresAt - valid.createdAt),
    x: String(valid.absoluteExpiresAt - valid.createdAt),
    ...changes,
  });
}

for (const cache of [false, true]) {
  describe(`RedisStore records${cache ? ' (validation cache on)' : ''}`, () => {
    const redis = useRedisStore({ cache });
    let prefix = '';
    let store: RedisStore;
    let admin: RedisFixture['admin'];
    beforeEach(() => {
      ({ store, admin, prefix } = redis());
    });

    async function write(id: string, fields: Record<string, string>): Promise<void> {
      const key = `${prefix}s:${id}`;
      await admin.hSet(key, fields);
      await admin.pExpire(key, 60_000);
    }

    it('reads the compact fields with absolute times the version before offsets wrote', async () => {
      await write(valid.id, compactWith({ p: valid.ip ?? '', g: valid.userAgent ?? '' }));
      expect(await store.get(valid.id)).toEqual(valid);
    });

    it('reads the offset fields, lastSeenAt and authenticatedAt absent or not', async () => {
      const ip = valid.ip ?? '';
      const agent = valid.userAgent ?? '';
      await write(valid.id, offsetWith({ p: ip, g: agent }));
      expect(await store.get(valid.id)).toEqual(valid);
      const other = record({ data: { cart: [1, 2] } });
      await write(other.id, offsetWith({ p: ip, g: agent, s: '5', w: '-3' }));
      expect(await store.get(other.id)).toEqual({
        ...valid,
        id: other.id,
        lastSeenAt: valid.createdAt + 5,
        authenticatedAt: valid.createdAt - 3,
      });
    });

    it('reads a record in the layout earlier versions wrote, data fields included', async () => {
      await write(valid.id, fieldsOf(valid));
      expect(await store.get(valid.id)).toEqual(valid);
      expect(await store.get(valid.id)).toEqual(valid);
    });

    it('a level-1 session without methods writes no level fields; others write both', async () => {
      const plain = record();
      const stepped = record({ aal: 2, amr: ['pwd', 'otp', 'mfa'] });
      for (const r of [plain, stepped]) await store.create(r);
      const plainFields = await admin.hGetAll(`${prefix}s:${plain.id}`);
      expect(plainFields.v).toBeUndefined();
      expect(plainFields.m).toBeUndefined();
      const steppedFields = await admin.hGetAll(`${prefix}s:${stepped.id}`);
      expect(steppedFields).toMatchObject({ v: '2', m: 'pwd otp mfa' });
      expect(await store.get(stepped.id)).toEqual(stepped);
    });

    it('records from before levels (no level fields, no aal/amr in JSON) read as level 1', async () => {
      const { aal: _aal, amr: _amr, ...old } = json;
      const earlier = { ...fieldsOf(valid), record: JSON.stringify(old) };
      const compact = record({ data: { cart: [1, 2] } });
      await write(valid.id, earlier);
      await write(compact.id, { ...compactWith({}), u: compact.userId });
      expect(await store.get(valid.id)).toEqual({ ...valid, aal: 1, amr: [] });
      expect((await store.get(compact.id))?.aal).toBe(1);
      expect((await store.get(compact.id))?.amr).toEqual([]);
    });

    it('an earlier-layout record keeps the level and methods its JSON holds, across a data update', async () => {
      const stepped = record({ aal: 2, amr: ['pwd', 'otp', 'mfa'], data: { cart: [1] } });
      // Even earlier: data inside \`record\`, so updateData rewrites it (SESSION_CONVERT).
      const { userId, lastSeenAt, idleExpiresAt } = stepped;
      await write(stepped.id, {
        record: JSON.stringify(stepped),
        userId,
        lastSeenAt: String(lastSeenAt),
        idleExpiresAt: String(idleExpiresAt),
      });
      expect(await store.get(stepped.id)).toEqual(stepped);
      const change = { set: { seen: true }, remove: [], maxBytes: 4096 };
      expect(await store.updateData(stepped.id, change)).toBe('updated');
      expect(await store.get(stepped.id)).toEqual({ ...stepped, data: { cart: [1], seen: true } });
    });

    it('writes a realistic session as a listpack hash, long texts in parts, and reads it back', async () => {
      const realistic = record({
        ip: '203.0.113.7',
        userAgent: `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 ${'é'.repeat(5)}`,
        user: { id: 'user-1', name: 'Ada Lovelace', note: '🦊'.repeat(30) },
        data: { cart: [1, 2] },
      });
      await store.create(realistic);
      const key = `${prefix}s:${realistic.id}`;
      expect(await admin.sendCommand(['OBJECT', 'ENCODING', key])).toBe('listpack');
      const fields = await admin.hGetAll(key);
      for (const value of Object.values(fields))
        expect(Buffer.byteLength(value)).toBeLessThanOrEqual(64);
      expect(fields.g1).toBeDefined();
      // The snapshot starts with the user id: stored without it, in parts too.
      expect(fields.o2).toBeDefined();
      expect(fields.n).toBeUndefined();
      expect(await store.get(realistic.id)).toEqual(realistic);
      expect(await store.get(realistic.id)).toEqual(realistic);
      const anonymous = record({ ip: null, userAgent: null, user: {} });
      await store.create(anonymous);
      expect(await store.get(anonymous.id)).toEqual(anonymous);
    });

    it('reads back a snapshot in more parts than it names ahead of time (past 1 KiB)', async () => {
      const large = record({ user: { name: 'Ada', bio: 'x'.repeat(3000) } });
      await store.create(large);
      expect((await admin.hGetAll(`${prefix}s:${large.id}`)).n20).toBeDefined();
      expect(await store.get(large.id)).toEqual(large);
    });

    it('stores a snapshot whose leading id is the user id once, and reads it back in its order', async () => {
      const usual = record({ user: { id: 'user-1', name: 'Ada', roles: ['admin'] } });
      const otherOrder = record({ user: { name: 'Ada', id: 'user-1' } });
      const otherId = record({ user: { id: 'someone-else', name: 'Ada' } });
      const noId = record({ user: { name: 'Ada' } });
      for (const r of [usual, otherOrder, otherId, noId]) await store.create(r);
      const fieldsOf = (id: string) => admin.hGetAll(`${prefix}s:${id}`);
      expect(await fieldsOf(usual.id)).toMatchObject({ o: '{"name":"Ada","roles":["admin"]}' });
      expect((await fieldsOf(usual.id)).n).toBeUndefined();
      for (const r of [otherOrder, otherId, noId]) {
        expect((await fieldsOf(r.id)).n).toBe(JSON.stringify(r.user));
        expect((await fieldsOf(r.id)).o).toBeUndefined();
      }
      for (const r of [usual, otherOrder, otherId, noId]) {
        const read = await store.get(r.id);
        expect(read).toEqual(r);
        expect(JSON.stringify(read?.user)).toBe(JSON.stringify(r.user));
      }
    });

    for (const [label, fields] of GARBLED) {
      it(`a hash with ${label} is no session, twice over`, async () => {
        const id = record().id;
        await write(id, fields);
        expect(await store.get(id)).toBeNull();
        // A second read may be a cache hit: it must be the same null.
        expect(await store.get(id)).toBeNull();
        await store.touch(id, Date.now(), Date.now() + 60_000);
        expect(await store.get(id)).toBeNull();
      });
    }

    it('second factors: one hash per user in the users’ slot; a garbled factor is left out', async () => {
      const kept = factor({ userId: 'user-f', counter: 2 ** 40, lastUsedAt: 5 });
      const torn = factor({ userId: 'user-f', createdAt: kept.createdAt + 1 });
      const strange = factor({ userId: 'user-f', createdAt: kept.createdAt + 2 });
      for (const f of [kept, torn, strange]) await store.createFactor(f);
      const key = `${prefix}{users}:f:user-f`;
      expect(await admin.hGet(key, kept.id)).toBe('totp');
      await admin.hSet(key, { [`${torn.id}:t`]: 'soon', [strange.id]: 'sms' });
      expect(await store.listFactors('user-f')).toEqual([kept]);
      // The torn ones are still deleted whole, and counted by kind as stored.
      expect(await store.deleteFactors('user-f', 'totp')).toBe(2);
      expect(await store.deleteFactor('user-f', strange.id)).toBe(true);
      expect(await admin.exists(key)).toBe(0);
    });

    it('a garbled session is left out of its user’s list', async () => {
      const kept = record();
      await store.create(kept);
      const torn = record({ createdAt: kept.createdAt + 1 });
      await store.create(torn);
      await admin.hSet(`${prefix}s:${torn.id}`, 'n', '{"id":');
      expect(await store.listByUser('user-1', kept.createdAt)).toEqual([kept]);
    });
  });
}
