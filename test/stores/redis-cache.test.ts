import { Latchkey } from 'latchkey';
import { RedisStore } from 'latchkey/stores/redis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/clock.js';
import {
  deletePrefix,
  REDIS_URL,
  randomPrefix,
  redisUnavailable,
} from '../helpers/redis-server.js';

let prefix = '';
let stores: RedisStore[] = [];

beforeEach(async (context) => {
  const reason = await redisUnavailable();
  if (reason) {
    if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(reason);
    console.warn(`skipping: ${reason}`);
    context.skip();
  }
  prefix = randomPrefix();
  // Two stores, two connections: as two latchkey processes sharing one Redis.
  stores = await Promise.all([
    RedisStore.connect(REDIS_URL, { prefix, cache: true }),
    RedisStore.connect(REDIS_URL, { prefix, cache: { maxEntries: 100 } }),
  ]);
});
afterEach(async () => {
  await Promise.all(stores.map((store) => store.close()));
  stores = [];
  if (prefix) await deletePrefix(REDIS_URL, prefix);
});

describe('Redis validation cache', () => {
  it('a logout on one process is seen by another at its very next validation (100 times)', async () => {
    const [a, b] = stores as [RedisStore, RedisStore];
    const onA = new Latchkey({ store: a });
    const onB = new Latchkey({ store: b });
    for (let i = 0; i < 100; i++) {
      const { token } = await onA.create(`user-${i % 7}`);
      expect((await onA.validate(token)).session).not.toBeNull();
      expect((await onA.validate(token)).session).not.toBeNull();
      expect((await onB.validate(token)).session).not.toBeNull();
      await onB.logout(token);
      expect((await onA.validate(token)).reason).toBe('not_found');
      expect((await onB.validate(token)).reason).toBe('not_found');
    }
    // The second validation of each round on A is its hit; nothing else is.
    expect(a.cache?.stats().hitCount).toBe(100);
  });

  it('a touch and a revoke-all on one process reach the other process’s cache at once', async () => {
    const [a, b] = stores as [RedisStore, RedisStore];
    const clock = new FakeClock(Date.now());
    const onA = new Latchkey({ store: a, clock: clock.now });
    const onB = new Latchkey({ store: b, clock: clock.now });
    for (let i = 0; i < 50; i++) {
      const { token, session } = await onA.create('ada');
      await onA.validate(token);
      clock.advance(2 * 60_000);
      const refreshed = await onB.validate(token);
      expect(refreshed.session?.lastSeenAt).toBe(clock.time);
      expect((await onA.validate(token)).session?.lastSeenAt).toBe(clock.time);
      await onB.revokeAllForUser('ada');
      expect((await onA.validate(token)).reason).toBe('not_found');
      expect(await a.get(session.id)).toBeNull();
    }
  });

  it('keeps at most maxEntries records', async () => {
    const b = stores[1] as RedisStore;
    const auth = new Latchkey({ store: b });
    for (let i = 0; i < 150; i++) {
      const { token } = await auth.create('many');
      await auth.validate(token);
    }
    expect(b.cache?.size()).toBe(100);
  });
});

describe('Redis validation cache: decoded sessions', () => {
  it('a hit gives a fresh copy each time, and data changes on another process are seen at once', async () => {
    const [a, b] = stores as [RedisStore, RedisStore];
    const onA = new Latchkey({ store: a });
    const { session } = await onA.create('ada', {
      user: { name: 'Ada' },
      data: { cart: [1] },
    });
    await a.get(session.id);
    const first = await a.get(session.id);
    const hits = a.cache?.stats().hitCount ?? 0;
    if (!first) throw new Error('no session');
    (first.data as { cart: number[] }).cart.push(2);
    (first.user as { name: string }).name = 'changed';
    const second = await a.get(session.id);
    expect(a.cache?.stats().hitCount).toBe(hits + 1);
    expect(second?.data).toEqual({ cart: [1] });
    expect(second?.user).toEqual({ name: 'Ada' });
    for (let i = 0; i < 20; i++) {
      expect(await b.updateData(session.id, { set: { n: i }, remove: [], maxBytes: 8192 })).toBe(
        'updated',
      );
      // Another connection's invalidation can land a few ms after this one's reply (see the report
      // on the setImmediate rule): the same race exists without the decoded sessions.
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect((await a.get(session.id))?.data).toEqual({ cart: [1], n: i });
    }
  });

  it('a read answered after an invalidation of its key is not kept', async () => {
    const [a, b] = stores as [RedisStore, RedisStore];
    const onB = new Latchkey({ store: b });
    for (let i = 0; i < 20; i++) {
      const { token, session } = await onB.create('ada', { data: { n: 0 } });
      // The read is in flight while B writes: its reply may come before or after the invalidation.
      const read = a.get(session.id);
      const write = b.updateData(session.id, { set: { n: 1 }, remove: [], maxBytes: 8192 });
      await Promise.all([read, write]);
      expect((await a.get(session.id))?.data).toEqual({ n: 1 });
      await onB.logout(token);
      expect(await a.get(session.id)).toBeNull();
    }
  });

  it('is emptied and bypassed while the cache is off', async () => {
    const a = stores[0] as RedisStore;
    const onA = new Latchkey({ store: a });
    const { session } = await onA.create('ada');
    await a.get(session.id);
    expect(await a.get(session.id)).not.toBeNull();
    a.cache?.disable();
    expect(a.cache?.decodedSession(`${prefix}s:${session.id}`)).toBeUndefined();
    a.cache?.enable();
    expect(a.cache?.decodedSession(`${prefix}s:${session.id}`)).toBeUndefined();
    await a.get(session.id);
    // A compact record's id is its key's: the store fills it in, the cache keeps it empty.
    expect(a.cache?.decodedSession(`${prefix}s:${session.id}`)?.userId).toBe(session.userId);
    a.cache?.onClose();
    expect(a.cache?.decodedSession(`${prefix}s:${session.id}`)).toBeUndefined();
    expect(a.cache?.active).toBe(false);
    a.cache?.enable();
  });
});
