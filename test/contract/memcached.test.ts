import { randomBytes } from 'node:crypto';
import { MemcachedStore } from 'latchkey/stores/memcached';
import {
  describeDataPatch,
  describeSessionIndex,
  describeSessionStore,
  describeThrottleStore,
  type StoreHarness,
} from 'latchkey/testing';
import { afterAll } from 'vitest';
import { memcachedUnavailable, PrivateMemcached, rawSet } from '../helpers/memcached-server.js';

// One private memcached for the file; each test gets a prefix of its own.
let server: Promise<PrivateMemcached> | null = null;
const started = () => {
  server ??= PrivateMemcached.start(['-m', '256']);
  return server;
};
afterAll(async () => {
  if (server) await (await server).stop();
});

let prefix = '';
const harness: StoreHarness<MemcachedStore> = {
  unavailable: () => memcachedUnavailable(),
  async open() {
    prefix = `lk-test:${randomBytes(6).toString('hex')}:`;
    return MemcachedStore.connect((await started()).address, { prefix });
  },
  async corrupt(_store, id) {
    const { port } = await started();
    // Every field of a session but cut short, as a torn or foreign write leaves it.
    const torn = `{"id":"${id}","userId":"user-1","createdAt":`;
    await rawSet(port, `${prefix}s:${id}`, Buffer.from(torn));
  },
};

describeSessionStore('memcached', harness);
describeSessionIndex('memcached', harness);
describeDataPatch('memcached', harness);
describeThrottleStore('memcached', harness);
