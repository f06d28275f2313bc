import { createHash } from 'node:crypto';
import type { RedisStore } from 'latchkey/stores/redis';
import { record } from 'latchkey/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { type RedisFixture, useRedisStore } from '../helpers/redis-server.js';

describe('RedisStore session keys', () => {
  const redis = useRedisStore();
  let prefix = '';
  let store: RedisStore;
  let admin: RedisFixture['admin'];
  beforeEach(() => {
    ({ store, admin, prefix } = redis());
  });

  /** The user's index keys: this version's, an earlier version's (live, age), evicting. */
  function indexOf(userId: string): { index: string; live: string; age: string; evicting: string } {
    const tag = `${prefix}{u:${createHash('sha256').update(userId).digest('base64url')}}`;
    return {
      index: `${tag}:i`,
      live: `${tag}:live`,
      age: `${tag}:age`,
      evicting: `${tag}:evicting`,
    };
  }

  it('create writes the record, its index entry and its expiry entry', async () => {
    const created = record({ createdAt: Date.now(), idleExpiresAt: Date.now() + 60_000 });
    expect(await store.create(created)).toBeUndefined();
    const index = indexOf(created.userId);
    expect(await admin.exists(`${prefix}s:${created.id}`)).toBe(1);
    expect(await admin.zScore(index.index, created.id)).toBe(created.idleExpiresAt);
    expect(await admin.exists([index.live, index.age, index.evicting])).toBe(0);
    expect(await admin.zScore(`${prefix}expiries`, created.id)).toBe(created.idleExpiresAt);
    expect(await admin.pTTL(`${prefix}s:${created.id}`)).toBeGreaterThan(0);
    expect(await admin.pTTL(index.index)).toBeGreaterThan(0);
  });

  it('a createCapped the cap refuses leaves no record, index entry or expiry entry', async () => {
    const first = record();
    expect(await store.createCapped(first, 1)).toBe(true);
    const refused = record({ createdAt: first.createdAt + 1 });
    expect(await store.createCapped(refused, 1)).toBe(false);
    const index = indexOf(refused.userId);
    expect(await admin.exists(`${prefix}s:${refused.id}`)).toBe(0);
    expect(await admin.zScore(index.index, refused.id)).toBeNull();
    expect(await admin.zScore(`${prefix}expiries`, refused.id)).toBeNull();
    expect(await store.get(first.id)).toEqual(first);
  });

  it('sessions an earlier version indexed (live, age) are listed, capped, touched and revoked', async () => {
    const earlier = record({ createdAt: Date.now(), idleExpiresAt: Date.now() + 60_000 });
    await store.create(earlier);
    const index = indexOf(earlier.userId);
    // Moved into the earlier version's index, as that version wrote it.
    await admin.zRem(index.index, earlier.id);
    await admin.zAdd(index.live, { score: earlier.idleExpiresAt, value: earlier.id });
    await admin.zAdd(index.age, { score: earlier.createdAt, value: earlier.id });
    expect((await store.listByUser(earlier.userId, earlier.createdAt)).map((r) => r.id)).toEqual([
      earlier.id,
    ]);
    expect(await store.createCapped(record({ createdAt: earlier.createdAt + 1 }), 1)).toBe(false);
    await store.touch(earlier.id, earlier.createdAt + 1, earlier.idleExpiresAt + 1);
    expect(await admin.zScore(index.live, earlier.id)).toBe(earlier.idleExpiresAt + 1);
    expect(await store.deleteByUser(earlier.userId)).toBe(1);
    expect(await store.get(earlier.id)).toBeNull();
    expect(await admin.exists([index.index, index.live, index.age, index.evicting])).toBe(0);
  });

  it('createCapped with room never evicts: the store leaves eviction to the core', async () => {
    const sessions = [0, 1, 2].map((i) => record({ createdAt: Date.now() + i }));
    for (const session of sessions) expect(await store.createCapped(session, 3)).toBe(true);
    expect(await store.createCapped(record({ createdAt: Date.now() + 3 }), 3)).toBe(false);
    for (const session of sessions) expect(await store.get(session.id)).toEqual(session);
  });

  it('an eviction an earlier version left half-done is finished by the next create', async () => {
    // The earlier version moved the id to `evicting` and crashed before deleting the record.
    const evicted = record();
    await store.create(evicted);
    const index = indexOf(evicted.userId);
    await admin.zRem(index.index, evicted.id);
    await admin.sAdd(index.evicting, evicted.id);
    const next = record({ createdAt: evicted.createdAt + 1 });
    await store.create(next);
    expect(await store.get(evicted.id)).toBeNull();
    expect(await admin.sMembers(index.evicting)).toEqual([]);
    expect(await store.get(next.id)).toEqual(next);
  });

  it('revoke-all sees a session an earlier version was still evicting', async () => {
    const evicted = record();
    await store.create(evicted);
    const index = indexOf(evicted.userId);
    await admin.zRem(index.index, evicted.id);
    await admin.sAdd(index.evicting, evicted.id);
    expect(await store.deleteByUser(evicted.userId)).toBe(1);
    expect(await store.get(evicted.id)).toBeNull();
  });
});
