import { createHash } from 'node:crypto';
import type { RedisStore } from 'latchkey/stores/redis';
import { record } from 'latchkey/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { earlierLayoutFields, type RedisFixture, useRedisStore } from '../helpers/redis-server.js';

type Session = ReturnType<typeof record>;

/** A live session (Redis' TTL must not take it during the test). */
const live = (overrides: Partial<Session> = {}): Session => {
  const now = Date.now();
  return record({ createdAt: now, lastSeenAt: now, idleExpiresAt: now + 60_000, ...overrides });
};

describe('RedisStore session keys', () => {
  const redis = useRedisStore();
  let prefix = '';
  let store: RedisStore;
  let admin: RedisFixture['admin'];
  beforeEach(() => {
    ({ store, admin, prefix } = redis());
  });

  /** The user's bucket, its `:e`, and the tag each of the user's fields starts with. */
  function bucketOf(userId: string): { bucket: string; evicting: string; tag: string } {
    const hash = createHash('sha256').update(userId).digest();
    const bucket = `${prefix}{i:${hash.readUInt16BE(0) >> 2}}`;
    return { bucket, evicting: `${bucket}:e`, tag: hash.subarray(2, 11).toString('base64url') };
  }

  /** The per-user index keys of the version before the buckets: index, live, age, evicting. */
  function legacyOf(userId: string): {
    index: string;
    live: string;
    age: string;
    evicting: string;
  } {
    const tag = `${prefix}{u:${createHash('sha256').update(userId).digest('base64url')}}`;
    return {
      index: `${tag}:i`,
      live: `${tag}:live`,
      age: `${tag}:age`,
      evicting: `${tag}:evicting`,
    };
  }

  /**
   * Writes `session` exactly as the version before the buckets did: absolute `l` `i` `a` `t`, an
   * entry in the user's own index (or, `even earlier`, in `live` and `age`) and in `expiries`.
   */
  async function writeEarlier(session: Session, evenEarlier = false): Promise<void> {
    const key = `${prefix}s:${session.id}`;
    await admin.hSet(key, earlierLayoutFields(session));
    await admin.pExpireAt(key, Math.max(session.idleExpiresAt, Date.now() + 60_000));
    const index = legacyOf(session.userId);
    const entry = { score: session.idleExpiresAt, value: session.id };
    if (evenEarlier) {
      await admin.zAdd(index.live, entry);
      await admin.zAdd(index.age, { score: session.createdAt, value: session.id });
    } else {
      await admin.zAdd(index.index, entry);
    }
    await admin.pExpire(evenEarlier ? index.live : index.index, 60_000);
    await admin.zAdd(`${prefix}expiries`, entry);
  }

  it('create writes the record and one field in its user’s bucket, and nothing else', async () => {
    const created = live();
    expect(await store.create(created)).toBeUndefined();
    const { bucket, evicting, tag } = bucketOf(created.userId);
    const legacy = legacyOf(created.userId);
    expect(await admin.exists(`${prefix}s:${created.id}`)).toBe(1);
    expect(await admin.hGetAll(bucket)).toEqual({
      [`${tag}${created.id}`]: String(created.idleExpiresAt),
    });
    expect(await admin.sendCommand(['OBJECT', 'ENCODING', bucket])).toBe('listpack');
    expect(
      await admin.exists([
        evicting,
        `${prefix}expiries`,
        legacy.index,
        legacy.live,
        legacy.age,
        legacy.evicting,
      ]),
    ).toBe(0);
    expect(await admin.pTTL(`${prefix}s:${created.id}`)).toBeGreaterThan(0);
    expect(await admin.pTTL(bucket)).toBeGreaterThan(0);
    // Fresh: lastSeenAt and authenticatedAt equal createdAt, so they cost no fields.
    const fields = await admin.hGetAll(`${prefix}s:${created.id}`);
    expect(fields).toMatchObject({ c: String(created.createdAt), e: '60000', x: '43200000' });
    expect(fields.s).toBeUndefined();
    expect(fields.w).toBeUndefined();
  });

  it('touch writes offsets; a session touched and stepped up reads back whole', async () => {
    const now = Date.now();
    const created = live({ createdAt: now, authenticatedAt: now - 5_000 });
    await store.create(created);
    await store.touch(created.id, created.createdAt + 7, created.idleExpiresAt + 7);
    const fields = await admin.hGetAll(`${prefix}s:${created.id}`);
    expect(fields).toMatchObject({ s: '7', e: '60007', w: '-5000' });
    expect(await store.get(created.id)).toEqual({
      ...created,
      lastSeenAt: created.createdAt + 7,
      idleExpiresAt: created.idleExpiresAt + 7,
    });
    const { bucket, tag } = bucketOf(created.userId);
    expect(await admin.hGet(bucket, `${tag}${created.id}`)).toBe(String(created.idleExpiresAt + 7));
  });

  it('a createCapped the cap refuses leaves no record and no index entry', async () => {
    const first = record();
    expect(await store.createCapped(first, 1)).toBe(true);
    const refused = record({ createdAt: first.createdAt + 1 });
    expect(await store.createCapped(refused, 1)).toBe(false);
    const { bucket, tag } = bucketOf(refused.userId);
    expect(await admin.exists(`${prefix}s:${refused.id}`)).toBe(0);
    expect(await admin.hExists(bucket, `${tag}${refused.id}`)).toBe(0);
    expect(await store.get(first.id)).toEqual(first);
  });

  for (const evenEarlier of [false, true]) {
    it(`sessions the version before the buckets wrote${evenEarlier ? ' (live, age)' : ''} are read, listed, capped, touched, updated and revoked`, async () => {
      const earlier = live();
      await writeEarlier(earlier, evenEarlier);
      const index = legacyOf(earlier.userId);
      expect(await store.get(earlier.id)).toEqual(earlier);
      const current = live({ createdAt: earlier.createdAt + 1 });
      expect(await store.createCapped(current, 2)).toBe(true);
      const listed = await store.listByUser(earlier.userId, earlier.createdAt);
      expect(listed.map((r) => r.id)).toEqual([earlier.id, current.id]);
      // The earlier session counts against the cap.
      expect(await store.createCapped(live({ createdAt: earlier.createdAt + 2 }), 2)).toBe(false);
      await store.touch(earlier.id, earlier.createdAt + 1, earlier.idleExpiresAt + 1);
      const fields = await admin.hGetAll(`${prefix}s:${earlier.id}`);
      expect(fields).toMatchObject({
        l: String(earlier.createdAt + 1),
        i: String(earlier.idleExpiresAt + 1),
      });
      expect(fields.e).toBeUndefined();
      expect(await admin.zScore(evenEarlier ? index.live : index.index, earlier.id)).toBe(
        earlier.idleExpiresAt + 1,
      );
      const change = { set: { seen: true }, remove: [], maxBytes: 4096 };
      expect(await store.updateData(earlier.id, change)).toBe('updated');
      expect(await store.get(earlier.id)).toEqual({
        ...earlier,
        lastSeenAt: earlier.createdAt + 1,
        idleExpiresAt: earlier.idleExpiresAt + 1,
        data: { seen: true },
      });
      // "Log out everywhere" finds both.
      expect(await store.deleteByUser(earlier.userId)).toBe(2);
      expect(await store.get(earlier.id)).toBeNull();
      expect(await store.get(current.id)).toBeNull();
      expect(await admin.exists([index.index, index.live, index.age, index.evicting])).toBe(0);
      expect(await store.listByUser(earlier.userId, earlier.createdAt)).toEqual([]);
    });
  }

  it('a logout of a session the version before the buckets wrote takes it out of its index', async () => {
    const earlier = live();
    await writeEarlier(earlier);
    expect(await store.delete(earlier.id)).toBe(true);
    expect(await admin.exists(legacyOf(earlier.userId).index)).toBe(0);
  });

  it('the sweep deletes the dead sessions an earlier version left in `expiries`, and drains it', async () => {
    const now = Date.now();
    const dead = live({ idleExpiresAt: now + 1_000 });
    const alive = live({ userId: 'user-2' });
    await writeEarlier(dead);
    await writeEarlier(alive);
    expect(await store.deleteExpired(now + 5_000)).toBe(1);
    expect(await store.get(dead.id)).toBeNull();
    expect(await store.get(alive.id)).toEqual(alive);
    expect(await admin.exists(legacyOf(dead.userId).index)).toBe(0);
    expect(await admin.zRange(`${prefix}expiries`, 0, -1)).toEqual([alive.id]);
    // Once the last one is dead too, `expiries` is gone.
    expect(await store.deleteExpired(alive.idleExpiresAt)).toBe(1);
    expect(await admin.exists([`${prefix}expiries`, legacyOf(alive.userId).index])).toBe(0);
  });

  it('"log out everywhere" revokes a session the version before the buckets wrote, `expiries` and all', async () => {
    const earlier = live();
    await writeEarlier(earlier);
    expect(await store.deleteByUser(earlier.userId)).toBe(1);
    expect(await store.get(earlier.id)).toBeNull();
    expect(await store.deleteExpired(earlier.idleExpiresAt)).toBe(0);
    expect(await admin.exists(`${prefix}expiries`)).toBe(0);
  });

  it('the sweep takes the entries of dead and gone sessions out of the buckets', async () => {
    const now = Date.now();
    const dead = live({ idleExpiresAt: now + 1_000 });
    const gone = live({ userId: 'user-2', idleExpiresAt: now + 1_000 });
    const kept = live({ userId: 'user-2', createdAt: now + 1 });
    for (const session of [dead, gone, kept]) await store.create(session);
    await admin.del(`${prefix}s:${gone.id}`);
    expect(await store.deleteExpired(now + 5_000)).toBe(1);
    expect(await admin.exists(bucketOf(dead.userId).bucket)).toBe(0);
    const { bucket, tag } = bucketOf('user-2');
    expect(await admin.hKeys(bucket)).toEqual([`${tag}${kept.id}`]);
  });

  it('createCapped with room never evicts: the store leaves eviction to the core', async () => {
    const sessions = [0, 1, 2].map((i) => record({ createdAt: Date.now() + i }));
    for (const session of sessions) expect(await store.createCapped(session, 3)).toBe(true);
    expect(await store.createCapped(record({ createdAt: Date.now() + 3 }), 3)).toBe(false);
    for (const session of sessions) expect(await store.get(session.id)).toEqual(session);
  });

  it('a revoke-all that stopped after taking the entries is finished by the next create', async () => {
    const taken = live();
    await store.create(taken);
    const { bucket, evicting, tag } = bucketOf(taken.userId);
    // As INDEX_TAKE leaves it: the entry moved to `:e`, the record not deleted yet.
    await admin.hDel(bucket, `${tag}${taken.id}`);
    await admin.hSet(evicting, `${tag}${taken.id}`, String(taken.idleExpiresAt));
    expect(await store.listByUser(taken.userId, taken.createdAt)).toEqual([]);
    const next = live({ createdAt: taken.createdAt + 1 });
    await store.create(next);
    expect(await store.get(taken.id)).toBeNull();
    expect(await admin.exists(evicting)).toBe(0);
    expect(await store.get(next.id)).toEqual(next);
  });

  it('revoke-all sees the entries an earlier revoke-all took but did not finish', async () => {
    const taken = live();
    await store.create(taken);
    const { bucket, evicting, tag } = bucketOf(taken.userId);
    await admin.hDel(bucket, `${tag}${taken.id}`);
    await admin.hSet(evicting, `${tag}${taken.id}`, String(taken.idleExpiresAt));
    expect(await store.deleteByUser(taken.userId)).toBe(1);
    expect(await store.get(taken.id)).toBeNull();
    expect(await admin.exists(evicting)).toBe(0);
  });

  it('an eviction the version before the buckets left half-done is finished by the next create', async () => {
    // That version moved the id to `evicting` and crashed before deleting the record.
    const evicted = live();
    await writeEarlier(evicted);
    const index = legacyOf(evicted.userId);
    await admin.zRem(index.index, evicted.id);
    await admin.sAdd(index.evicting, evicted.id);
    const next = live({ createdAt: evicted.createdAt + 1 });
    await store.create(next);
    expect(await store.get(evicted.id)).toBeNull();
    expect(await admin.sMembers(index.evicting)).toEqual([]);
    expect(await store.get(next.id)).toEqual(next);
  });

  it('revoke-all sees a session the version before the buckets was still evicting', async () => {
    const evicted = live();
    await writeEarlier(evicted);
    const index = legacyOf(evicted.userId);
    await admin.zRem(index.index, evicted.id);
    await admin.sAdd(index.evicting, evicted.id);
    expect(await store.deleteByUser(evicted.userId)).toBe(1);
    expect(await store.get(evicted.id)).toBeNull();
  });

  it('an entry under a user’s tag whose record is another user’s is never listed or revoked for them', async () => {
    const own = live();
    const other = live({ userId: 'user-2' });
    await store.create(own);
    await store.create(other);
    // As two users whose tags met in one bucket would leave it.
    const { bucket, tag } = bucketOf(own.userId);
    await admin.hSet(bucket, `${tag}${other.id}`, String(other.idleExpiresAt));
    expect((await store.listByUser(own.userId, own.createdAt)).map((r) => r.id)).toEqual([own.id]);
    expect(await store.deleteByUser(own.userId)).toBe(1);
    expect(await store.get(other.id)).toEqual(other);
    expect((await store.listByUser('user-2', other.createdAt)).map((r) => r.id)).toEqual([
      other.id,
    ]);
  });

  it('other users’ entries leave a bucket once Redis’ clock says their records are gone', async () => {
    const own = live();
    await store.create(own);
    const { bucket, tag } = bucketOf(own.userId);
    // Another user's entries in the same bucket: one long dead, one dead by the caller's clock only.
    const longDead = `${'A'.repeat(12)}${record().id}`;
    const recent = `${'B'.repeat(12)}${record().id}`;
    await admin.hSet(bucket, {
      [longDead]: String(Date.now() - 120_000),
      [recent]: String(Date.now() - 1_000),
    });
    await store.createCapped(live({ createdAt: own.createdAt + 1 }), 10);
    const fields = await admin.hKeys(bucket);
    expect(fields).not.toContain(longDead);
    expect(fields).toContain(recent);
    expect(fields.filter((field) => field.startsWith(tag))).toHaveLength(2);
  });
});
