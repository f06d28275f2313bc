import { ConfigError, type LatchkeyStore } from '../index.js';

/** A store the server or CLI opened and must close. */
export type OpenedStore = LatchkeyStore & { close(): Promise<void> };

export interface StoreChoice {
  /** SQLite file, used when `store` is absent. */
  readonly db: string;
  /** `redis://…`, `rediss://…`, `postgres://…` or `postgresql://…`. */
  readonly store?: string | undefined;
  /** The validation cache (Redis and PostgreSQL only). */
  readonly cache?: boolean;
}

/**
 * Opens the store named by `--store` (else the SQLite `--db` file) and waits until it answers, so a
 * wrong URL fails at start-up with its reason rather than at the first request. Drivers load
 * lazily: a SQLite deployment never needs `redis` or `pg` installed.
 */
export async function openStore(choice: StoreChoice): Promise<OpenedStore> {
  const url = choice.store;
  if (url === undefined || url === '') {
    if (choice.cache) throw new ConfigError('--cache: needs --store redis://… or postgres://…');
    const { SqliteStore } = await import('../stores/sqlite.js');
    return new SqliteStore(choice.db);
  }
  const scheme = /^([a-z]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  try {
    if (scheme === 'redis' || scheme === 'rediss') {
      const { RedisStore } = await import('../stores/redis.js');
      return await RedisStore.connect(url, { cache: choice.cache ?? false });
    }
    if (scheme === 'postgres' || scheme === 'postgresql') {
      const { PostgresStore } = await import('../stores/postgres.js');
      return await PostgresStore.connect(url, { cache: choice.cache ?? false });
    }
  } catch (error) {
    throw new ConfigError(`--store: cannot reach ${redact(url)}: ${reason(error)}`);
  }
  throw new ConfigError(
    `--store: "${redact(url)}" is not a redis://, rediss://, postgres:// or postgresql:// URL`,
  );
}

/** A URL fit for a log line or an error message: any password (user info or query) replaced. */
export function redact(url: string): string {
  return url
    .replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@')
    .replace(/([?&](?:password|pass|pwd|sslpassword)=)[^&#]*/gi, '$1***');
}

function reason(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}
