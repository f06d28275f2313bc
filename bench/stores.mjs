/**
 * Builds the latchkey store a bench case names. Redis and PostgreSQL stores are optional: when the
 * built module is missing the case is skipped with the reason, never failed.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url);

/** Where the bench's services listen; the runner sets these for its children. */
export const REDIS_URL = process.env.LATCHKEY_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const MEMCACHED_ADDRESS = process.env.LATCHKEY_BENCH_MEMCACHED ?? '127.0.0.1:11211';
export const POSTGRES_URL =
  process.env.LATCHKEY_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The bench's Redis key prefix, private to this process so bench keys never meet the tests' keys. */
export const REDIS_PREFIX = `bench:${process.pid}:`;

/** Thrown when a case cannot run here (module not built yet, service down). */
export class Skip extends Error {}

/**
 * @param {string} file path under dist/, e.g. `stores/redis.js`
 * @param {string} name the export wanted
 */
export async function importBuilt(file, name) {
  const url = new URL(file, dist);
  if (!existsSync(url)) throw new Skip(`dist/${file} not built yet`);
  const module = await import(url.href);
  if (typeof module[name] !== 'function') throw new Skip(`dist/${file} has no ${name} export`);
  return module[name];
}

/** A fresh SQLite file in a temp folder (WAL, as an app would run it). */
export function tempSqlitePath() {
  return join(mkdtempSync(join(tmpdir(), 'latchkey-bench-')), 'sessions.db');
}

/**
 * @param {'memory' | 'sqlite' | 'redis' | 'redis-cache' | 'memcached' | 'postgres' | 'postgres-cache'} kind
 * @param {{ maxSessions?: number }} [options]
 * @returns {Promise<import('../dist/index.js').SessionStore>}
 */
export async function createStore(kind, options = {}) {
  switch (kind) {
    case 'memory': {
      const MemoryStore = await importBuilt('index.js', 'MemoryStore');
      return new MemoryStore({ maxSessions: options.maxSessions });
    }
    case 'sqlite': {
      const SqliteStore = await importBuilt('stores/sqlite/index.js', 'SqliteStore');
      return new SqliteStore(tempSqlitePath());
    }
    case 'redis':
    case 'redis-cache': {
      const RedisStore = await importBuilt('stores/redis/index.js', 'RedisStore');
      const storeOptions = { prefix: REDIS_PREFIX, cache: kind === 'redis-cache' };
      return openStore(RedisStore, REDIS_URL, storeOptions);
    }
    case 'memcached': {
      const MemcachedStore = await importBuilt('stores/memcached/index.js', 'MemcachedStore');
      return MemcachedStore.connect(MEMCACHED_ADDRESS, { prefix: `bench:${process.pid}:` });
    }
    case 'postgres':
    case 'postgres-cache': {
      const PostgresStore = await importBuilt('stores/postgres/index.js', 'PostgresStore');
      const storeOptions = { schema: 'latchkey_bench', cache: kind === 'postgres-cache' };
      return openStore(PostgresStore, POSTGRES_URL, storeOptions);
    }
    default:
      throw new Error(`unknown store kind ${kind}`);
  }
}

/**
 * Opens a network store from a URL, by a static `connect`/`open` when the class has one.
 * @param {any} Store
 * @param {string} url
 * @param {object} storeOptions
 */
async function openStore(Store, url, storeOptions) {
  const open = Store.connect ?? Store.open;
  const store = open ? await open.call(Store, url, storeOptions) : new Store(url, storeOptions);
  // Stores that connect lazily or need a schema expose one of these; call what exists.
  if (typeof store.connect === 'function') await store.connect();
  if (typeof store.migrate === 'function') await store.migrate();
  return store;
}
