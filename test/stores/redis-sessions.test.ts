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

  /** The user's index keys: live, age, evicting. */
  function indexOf(userId: string): { live: string; age: string; evicting: string } {
    const tag = `${prefix}{u:${createHash('sha256').update(userId).digest('base64url')}}`;
    return { live: `${tag}:live`, age: `${tag}:age`, evicting: `${tag}:evicting` };
  }

  it('create writes the record, its index entries and its expiry entry', async () => {
    const created = record({ createdAt: Date.now(), idleExpiresAt: Date.now() + 60_000 });
    expect(await store.create(created)).toBeUndefined();
    const index = indexOf(created.userId);
    expect(await admin.exists(`${prefix}s:${created.id}`)).toBe(1);
    expect(await admin.zScore(index.live, created.id)).toBe(created.idleExpiresAt);
    expect(await admin.zScore(index.age, created.id)).toBe(created.createdAt);
    expect(await admin.zScore(`${prefix}expiries`, created.id)).toBe(created.idleExpiresAt);
    expect(await admin.pTTL(`${prefix}s:${created.id}`)).toBeGreaterThan(0);
  });

  it('a createCapped the cap refuses leaves no record, index entry or expiry entry', async () => {
    const first = record();
    expect(await store.createCapped(first, 1)).toBe(true);
    const refused = record({ createdAt: first.createdAt + 1 });
    expect(await store.createCapped(refused, 1)).toBe(false);
    const index = indexOf(refused.userId);
    expect(await admin.exists(`${prefix}s:${refused.id}`)).toBe(0);
    expect(await admin.zScore(index.live, refused.id)).toBeNull();
    expect(await admin.zScore(index.age, refused.id)).toBeNull();
    expect(await admin.zScore(`${prefix}expiries`, refused.id)).toBeNull();
    expect(await store.get(first.id)).toEqual(first);
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
    await admin.zRem(index.live, evicted.id);
    await admin.zRem(index.age, evicted.id);
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
    await admin.zRem(index.live, evicted.id);
    await admin.zRem(index.age, evicted.id);
    await admin.sAdd(index.evicting, evicted.id);
    expect(await store.deleteByUser(evicted.userId)).toBe(1);
    expect(await store.get(evicted.id)).toBeNull();
  });
});
