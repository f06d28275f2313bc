import { PostgresStore } from 'latchkey/stores/postgres';
import { describeValidationCache } from 'latchkey/testing';
import { FreezeProxy } from '../helpers/freeze-proxy.js';
import {
  dropSchema,
  POSTGRES_URL,
  postgresUnavailable,
  randomSchema,
} from '../helpers/postgres-server.js';

let proxy: FreezeProxy | null = null;
let schema = '';

describeValidationCache<PostgresStore>('postgres', {
  unavailable: () => postgresUnavailable(),
  async open() {
    schema = randomSchema();
    const target = new URL(POSTGRES_URL);
    proxy = await FreezeProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    // Two stores, two pools and LISTEN connections: as two latchkey processes.
    const first = await PostgresStore.connect(POSTGRES_URL, { schema, cache: { maxEntries: 100 } });
    return [first, await PostgresStore.connect(POSTGRES_URL, { schema, cache: true })];
  },
  cache: (store) => store.cache,
  freezable: {
    open() {
      const throughProxy = new URL(POSTGRES_URL);
      throughProxy.port = String(proxy?.port);
      return PostgresStore.connect(throughProxy.toString(), { schema, cache: true });
    },
    freeze: () => proxy?.freeze(),
    thaw: () => proxy?.thaw(),
  },
  async cleanup() {
    await proxy?.close();
    proxy = null;
    await dropSchema(schema);
  },
});
