import { Latchkey } from 'latchkey';
import { RedisStore } from 'latchkey/stores/redis';
import { describeValidationCache } from 'latchkey/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FreezeProxy } from '../helpers/freeze-proxy.js';
import {
  deletePrefix,
  REDIS_URL,
  randomPrefix,
  redisUnavailable,
} from '../helpers/redis-server.js';

let proxy: FreezeProxy | null = null;
let shared = '';
describeValidationCache<RedisStore>('redis', {
  unavailable: redisUnavailable,
  async open() {
    shared = randomPrefix();
    const target = new URL(REDIS_URL);
    proxy = await FreezeProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
    // Two stores, two connections: as two latchkey processes sharing one Redis.
    return Promise.all([
      RedisStore.connect(REDIS_URL, { prefix: shared, cache: { maxEntries: 100 } }),
      RedisStore.connect(REDIS_URL, { prefix: shared, cache: true }),
    ]);
  },
  cache: (store) => store.cache,
  freezable: {
    open() {
      const throughProxy = new URL(REDIS_URL);
      throughProxy.port = String(proxy?.port);
      return RedisStore.connect(throughProxy.toString(), { prefix: shared, cache: true });
    },
    freeze: () => proxy?.freeze(),
    thaw: () => proxy?.thaw(),
  },
  async cleanup() {
    await proxy?.close();
    proxy = null;
    await deletePrefix(REDIS_URL, shared);
  },
});

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
      expect((await a.get(session.id))?.data).toEqual({ cart: [1], n: i });
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
