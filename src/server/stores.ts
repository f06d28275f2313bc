import { ConfigError, type LatchkeyStore } from '../index.js';

/** A store the server or CLI opened and must close. */
export type OpenedStore = LatchkeyStore & { close(): Promise<void> };

export interface StoreChoice {
  /** SQLite file, used when `store` is null. */
  readonly db: string;
  /** A URL of one of the {@link OPENERS}' schemes. */
  readonly store: string | null;
  /** The validation cache (Redis and PostgreSQL only). */
  readonly cache: boolean;
}

type Opener = (url: string, cache: boolean) => Promise<OpenedStore>;

// Drivers load lazily: a SQLite deployment never needs `redis` or `pg` installed.
const redis: Opener = async (url, cache) => {
  const { RedisStore } = await import('../stores/redis/index.js');
  return RedisStore.connect(url, { cache });
};
const postgres: Opener = async (url, cache) => {
  const { PostgresStore } = await import('../stores/postgres/index.js');
  return PostgresStore.connect(url, { cache });
};

/** Each URL scheme `--store` takes, and how it opens. */
const OPENERS: Readonly<Record<string, Opener>> = {
  redis,
  rediss: redis,
  postgres,
  postgresql: postgres,
};

/** `redis://, rediss://, postgres:// or postgresql://`, for messages. */
export const STORE_URLS = Object.keys(OPENERS)
  .map((scheme) => `${scheme}://`)
  .join(', ')
  .replace(/, (?=[^,]*$)/, ' or ');

function schemeOf(url: string): string {
  return /^([a-z]+):\/\//i.exec(url)?.[1]?.toLowerCase() ?? '';
}

export function isStoreUrl(url: string): boolean {
  return Object.hasOwn(OPENERS, schemeOf(url));
}

/**
 * Opens the store named by `store` (else the SQLite `db` file) and waits until it answers, so a
 * wrong URL fails at start-up with its reason rather than at the first request.
 */
export async function openStore(choice: StoreChoice): Promise<OpenedStore> {
  const url = choice.store;
  if (url === null) {
    const { SqliteStore } = await import('../stores/sqlite/index.js');
    try {
      return new SqliteStore(choice.db);
    } catch (error) {
      // A file that cannot be opened fails the operation (exit 1); it is not a wrong flag.
      throw new Error(`--db ${choice.db}: cannot open it (${reason(error)})`, { cause: error });
    }
  }
  const open = isStoreUrl(url) ? OPENERS[schemeOf(url)] : undefined;
  if (!open) {
    throw new ConfigError(`--store: "${redact(url)}" is not a ${STORE_URLS} URL`);
  }
  try {
    return await open(url, choice.cache);
  } catch (error) {
    throw new ConfigError(`--store: cannot reach ${redact(url)}: ${reason(error)}`);
  }
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
