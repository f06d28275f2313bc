import { createHash } from 'node:crypto';
import { Latchkey } from 'latchkey';
import { createValidationCache, RedisStore } from 'latchkey/stores/redis';
import { describeLatchkeyStore, record, type StoreHarness } from 'latchkey/testing';
import { createCluster, type RedisClusterType } from 'redis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  deletePrefix,
  earlierLayoutFields,
  PrivateCluster,
  randomPrefix,
  redisServerUnavailable,
  writeUndecodableSession,
} from '../helpers/redis-server.js';

/**
 * The whole store contract against a real 3-master Redis Cluster (private redis-server processes),
 * through node-redis' `createCluster`: every script must touch one hash slot, every read must be
 * routed to the node owning its key, and nothing may assume one server holds every key.
 */

let cluster: PrivateCluster | null = null;
let unavailable: string | null = null;
const clients: { plain?: RedisClusterType; cached?: RedisClusterType; other?: RedisClusterType } =
  {};

function connect(cache: boolean): Promise<RedisClusterType> {
  const client = createCluster({
    rootNodes: (cluster as PrivateCluster).rootNodes,
    RESP: 3,
    ...(cache ? { clientSideCache: createValidationCache() } : {}),
    defaults: { disableOfflineQueue: true, socket: { connectTimeout: 2000 } },
  }) as unknown as RedisClusterType;
  client.on('error', () => {});
  return client.connect() as Promise<RedisClusterType>;
}

beforeAll(async () => {
  unavailable = await redisServerUnavailable();
  if (unavailable) return;
  cluster = await PrivateCluster.start();
  clients.plain = await connect(false);
  clients.cached = await connect(true);
  clients.other = await connect(true);
});

afterAll(async () => {
  await Promise.all([clients.plain?.close(), clients.cached?.close(), clients.other?.close()]);
  await cluster?.destroy();
});

function harness(cache: boolean): StoreHarness<RedisStore> {
  let prefix = '';
  return {
    unavailable: async () => unavailable,
    async open() {
      prefix = randomPrefix();
      const client = cache ? clients.cached : clients.plain;
      if (!client) throw new Error('the cluster did not start');
      const store = new RedisStore(client, { prefix });
      if (cache && store.cache === null) throw new Error('the validation cache is not in use');
      return store;
    },
    async cleanup() {
      // Each master holds only its own slots' keys: scan every one of them.
      await Promise.all(
        (cluster as PrivateCluster).nodes.map((node) => deletePrefix(node.url, prefix)),
      );
    },
    // Routed by its key to the master that owns the session's slot.
    corrupt: (store, id) => writeUndecodableSession(store.client, `${prefix}s:${id}`),
  };
}

describeLatchkeyStore('redis cluster', harness(false));
// A cached read on a cluster must never differ from the node that owns the key.
describeLatchkeyStore('redis cluster (validation cache)', harness(true));

describe('Redis Cluster, beyond the contract', () => {
  beforeEach((context) => {
    if (!unavailable) return;
    if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(unavailable);
    console.warn(`skipping redis cluster: ${unavailable}`);
    context.skip();
  });

  it('spreads sessions over every master; a logout through one client empties the other client’s cache at once (100 times)', async () => {
    const prefix = randomPrefix();
    const a = new RedisStore(clients.cached as RedisClusterType, { prefix });
    const b = new RedisStore(clients.other as RedisClusterType, { prefix });
    const onA = new Latchkey({ store: a });
    const onB = new Latchkey({ store: b });
    try {
      const hitsBefore = b.cache?.stats().hitCount ?? 0;
      for (let i = 0; i < 100; i++) {
        const { token } = await onA.create(`user-${i % 7}`);
        expect((await onB.validate(token)).session).not.toBeNull();
        expect((await onB.validate(token)).session).not.toBeNull();
        expect((await onA.validate(token)).session).not.toBeNull();
        await onA.logout(token);
        expect((await onB.validate(token)).reason).toBe('not_found');
        expect((await onA.validate(token)).reason).toBe('not_found');
        // Live sessions kept for the spread check below.
        await onA.create(`user-${i % 7}`);
      }
      expect((b.cache?.stats().hitCount ?? 0) - hitsBefore).toBeGreaterThanOrEqual(100);
      const perNode = await Promise.all(
        (cluster as PrivateCluster).nodes.map(async (node) => {
          const keys = await node.cli('--scan', '--pattern', `${prefix}s:*`);
          return keys.split('\n').filter(Boolean).length;
        }),
      );
      expect(perNode.reduce((sum, n) => sum + n, 0)).toBe(100);
      for (const count of perNode) expect(count).toBeGreaterThan(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all(
        (cluster as PrivateCluster).nodes.map((node) => deletePrefix(node.url, prefix)),
      );
    }
  });

  it('sessions the version before the buckets wrote are read, listed, capped, touched and revoked', async () => {
    const prefix = randomPrefix();
    const client = clients.plain as RedisClusterType;
    const store = new RedisStore(client, { prefix });
    try {
      const now = Date.now();
      const earlier = record({ createdAt: now, lastSeenAt: now, idleExpiresAt: now + 60_000 });
      // As that version wrote it: absolute times, the user's own index, `expiries`.
      const key = `${prefix}s:${earlier.id}`;
      await client.hSet(key, earlierLayoutFields(earlier));
      await client.pExpire(key, 60_000);
      const index = `${prefix}{u:${createHash('sha256').update(earlier.userId).digest('base64url')}}:i`;
      await client.zAdd(index, { score: earlier.idleExpiresAt, value: earlier.id });
      await client.zAdd(`${prefix}expiries`, { score: earlier.idleExpiresAt, value: earlier.id });
      expect(await store.get(earlier.id)).toEqual(earlier);
      const current = record({
        createdAt: now + 1,
        lastSeenAt: now + 1,
        idleExpiresAt: now + 60_000,
      });
      expect(await store.createCapped(current, 2)).toBe(true);
      expect((await store.listByUser(earlier.userId, now)).map((session) => session.id)).toEqual([
        earlier.id,
        current.id,
      ]);
      expect(await store.createCapped(record({ createdAt: now + 2 }), 2)).toBe(false);
      await store.touch(earlier.id, now + 1, earlier.idleExpiresAt + 1);
      expect(await client.zScore(index, earlier.id)).toBe(earlier.idleExpiresAt + 1);
      expect(await client.hGet(key, 'i')).toBe(String(earlier.idleExpiresAt + 1));
      expect(await store.deleteByUser(earlier.userId)).toBe(2);
      expect(await store.get(earlier.id)).toBeNull();
      expect(await store.get(current.id)).toBeNull();
      expect(await client.exists(index)).toBe(0);
      expect(await store.deleteExpired(earlier.idleExpiresAt + 1)).toBe(0);
      expect(await client.exists(`${prefix}expiries`)).toBe(0);
    } finally {
      await store.close();
      await Promise.all(
        (cluster as PrivateCluster).nodes.map((node) => deletePrefix(node.url, prefix)),
      );
    }
  });

  it('a closed store leaves no listener on a cluster the app passed in', async () => {
    const client = clients.cached as RedisClusterType;
    const before = client.listenerCount('node-ready');
    const store = new RedisStore(client, { prefix: randomPrefix() });
    expect(client.listenerCount('node-ready')).toBe(before + 1);
    await store.close();
    expect(client.listenerCount('node-ready')).toBe(before);
  });
});
