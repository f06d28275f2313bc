import {
  type RememberStore,
  requireCapability,
  type SecondFactorStore,
  type SessionIndex,
  type ThrottleStore,
  type UserStore,
} from '../core/capabilities.js';
import { ConfigError, type SessionStore } from '../index.js';

/** A store the server or CLI opened and must close: the required port and any capabilities. */
export type OpenedStore = SessionStore & { close(): Promise<void> };

/** The sessions store: sessions (with their per-user index) and the login-attempt counters. */
export type SessionsStore = OpenedStore & SessionIndex & ThrottleStore;

/** The users store: accounts, remember-me tokens and second factors. */
export type UsersStore = OpenedStore & UserStore & RememberStore & SecondFactorStore;

export interface StoreChoice {
  /** SQLite file, used for sessions when `store` is null, and for users by the default rule. */
  readonly db: string;
  /** Where sessions and throttle counters live: a URL of one of the {@link SCHEMES}, or null. */
  readonly store: string | null;
  /** Where users and remember-me tokens live (see {@link planStores}), or null. */
  readonly users?: string | null;
  /** The validation cache (Redis and PostgreSQL only), for the sessions store. */
  readonly cache: boolean;
  /** The cache's bound on serving a revoked session while the store is silent (ms). Default 1,000. */
  readonly cacheMaxStaleness?: number;
}

/** `false`, or the validation cache's options. */
type CacheChoice = false | { maxStaleness?: number };
type Opener = (url: string, cache: CacheChoice) => Promise<OpenedStore>;

export interface Scheme {
  readonly open: Opener;
  /**
   * Keeps what it is given across restarts and never evicts it: only such a store may hold
   * users and remember-me tokens, unless the user asks for `--users memory` by name.
   */
  readonly durable: boolean;
  /** Takes `--cache` (a validation cache in front of the store). */
  readonly cache: boolean;
}

// Drivers load lazily: a SQLite deployment never needs `redis` or `pg` installed.
const redis: Scheme = {
  durable: true,
  cache: true,
  open: async (url, cache) => {
    const { RedisStore } = await import('../stores/redis/index.js');
    return RedisStore.connect(url, { cache });
  },
};
const postgres: Scheme = {
  durable: true,
  cache: true,
  open: async (url, cache) => {
    const { PostgresStore } = await import('../stores/postgres/index.js');
    return PostgresStore.connect(url, { cache });
  },
};
/** `memcached://host:11211[,host2:11212]`: sessions and throttle counters only (it evicts). */
const memcached: Scheme = {
  durable: false,
  cache: false,
  open: async (url) => {
    const { MemcachedStore } = await import('../stores/memcached/index.js');
    return MemcachedStore.connect(url.replace(/^memcached:\/\//i, '').replace(/\/+$/, ''));
  },
};
const memory: Scheme = {
  durable: false,
  cache: false,
  open: async () => {
    const { MemoryStore } = await import('../stores/memory/index.js');
    return new MemoryStore();
  },
};

/**
 * Each URL scheme `--store` and `--users` take, how it opens, and whether it is durable. A new
 * store is one entry here. `memory` is
 * written bare (`--store memory`) or as `memory://`. Besides these, the bare word `sqlite` names
 * the SQLite `--db` file (`--users sqlite`).
 */
export const SCHEMES: Readonly<Record<string, Scheme>> = {
  redis,
  rediss: redis,
  postgres,
  postgresql: postgres,
  memcached,
  memory,
};

/** `redis://, rediss://, postgres://, postgresql://, memory or sqlite`, for messages. */
export const STORE_URLS = [
  ...Object.keys(SCHEMES).map((scheme) => (SCHEMES[scheme] === memory ? scheme : `${scheme}://`)),
  'sqlite',
]
  .join(', ')
  .replace(/, (?=[^,]*$)/, ' or ');

function schemeOf(url: string): string {
  const bare = /^(memory|sqlite)$/i.exec(url.trim())?.[1];
  if (bare !== undefined) return bare.toLowerCase();
  return /^([a-z]+):\/\//i.exec(url)?.[1]?.toLowerCase() ?? '';
}

/** Whether `url` is the memory store, which lives inside one process. */
export function isMemory(url: string | null): boolean {
  return url !== null && schemeOf(url) === 'memory';
}

/** Whether `url` is the word `sqlite`: the SQLite `--db` file. */
function isSqlite(url: string | null): boolean {
  return url === null || schemeOf(url) === 'sqlite';
}

export function isStoreUrl(url: string, schemes = SCHEMES): boolean {
  return isSqlite(url) || Object.hasOwn(schemes, schemeOf(url));
}

/** Whether the store at `url` (null: SQLite) keeps users safely (see {@link Scheme.durable}). */
export function isDurable(url: string | null, schemes = SCHEMES): boolean {
  if (url === null || isSqlite(url)) return true;
  return isStoreUrl(url, schemes) && (schemes[schemeOf(url)] as Scheme).durable;
}

/** Whether the store at `url` (null: SQLite) takes `--cache`. */
export function takesCache(url: string | null): boolean {
  return (
    !isSqlite(url) &&
    isStoreUrl(url as string) &&
    (SCHEMES[schemeOf(url as string)] as Scheme).cache
  );
}

/** Why the users store is where it is, for `config check` and the start-up line. */
export type UsersReason =
  /** `--users` (or LATCHKEY_USERS, or `users` in the file) named it. */
  | 'given'
  /** No `--users`, and `--store` is absent (SQLite) or durable: one store for everything, as always. */
  | 'same as store'
  /** No `--users`, and `--store` is not durable: the SQLite `--db` file. */
  | 'sqlite default';

/** One store to open: a URL of {@link SCHEMES}, or null for the SQLite file `db`. */
export interface StoreTarget {
  readonly url: string | null;
  readonly db: string;
}

export interface StorePlan {
  readonly sessions: StoreTarget;
  readonly users: StoreTarget;
  readonly usersReason: UsersReason;
  /** Both roles in one store: opened once, closed once. */
  readonly shared: boolean;
}

/**
 * Where sessions and users live. Sessions (and throttle counters): `--store`, else the SQLite
 * `--db` file. Users (and remember-me tokens): `--users` when given; else the sessions store when
 * it is durable (SQLite, PostgreSQL, Redis: one store for everything, as before `--users`
 * existed); else (memory, or any other store marked not durable) the SQLite `--db` file.
 * A non-durable users store is refused with a {@link ConfigError}, except `memory` named
 * explicitly (for demos).
 */
export function planStores(choice: StoreChoice, schemes = SCHEMES): StorePlan {
  const target = (url: string | null): StoreTarget => ({
    url: isSqlite(url) ? null : url,
    db: choice.db,
  });
  const sessions = target(choice.store);
  const given = choice.users ?? null;
  let users: StoreTarget;
  let usersReason: UsersReason;
  if (given !== null) {
    users = target(given);
    usersReason = 'given';
  } else if (isDurable(sessions.url, schemes)) {
    users = sessions;
    usersReason = 'same as store';
  } else {
    users = { url: null, db: choice.db };
    usersReason = 'sqlite default';
  }
  if (refusedForUsers(users.url, schemes)) {
    throw new ConfigError(`--users: ${redact(users.url ?? '')} ${NOT_DURABLE}`);
  }
  return { sessions, users, usersReason, shared: keyOf(sessions) === keyOf(users) };
}

/** Why a non-durable users store is refused, after its URL. */
export const NOT_DURABLE =
  'is not durable (accounts and remember-me tokens could be lost or evicted): leave --users out for the SQLite file, give postgres:// or redis://, or --users memory for a demo';

/** Whether `url` may not hold users: a store not durable, other than `memory` named explicitly. */
export function refusedForUsers(url: string | null, schemes = SCHEMES): boolean {
  return (
    url !== null &&
    isStoreUrl(url, schemes) &&
    !isDurable(url, schemes) &&
    schemeOf(url) !== 'memory'
  );
}

function keyOf(target: StoreTarget): string {
  if (target.url === null) return `sqlite:${target.db}`;
  // Two `memory` stores are one: the same words name the same store.
  return schemeOf(target.url) === 'memory' ? 'memory' : target.url.trim();
}

/** How a target is written in logs and `config check`: the SQLite file, or the URL redacted. */
export function describeTarget(target: StoreTarget): string {
  return target.url === null ? target.db : redact(target.url);
}

/** The sessions and users stores, opened once each (once in all when they are the same). */
export interface OpenedStores {
  readonly plan: StorePlan;
  readonly sessions: SessionsStore;
  readonly users: UsersStore;
  /** Every distinct store, sessions first: one object when both roles share a store. */
  readonly all: readonly OpenedStore[];
  /** Closes each distinct store once. */
  close(): Promise<void>;
}

/**
 * Opens the sessions and users stores of {@link planStores} and waits until each answers, so a
 * wrong URL fails at start-up with its reason rather than at the first request. The same store
 * for both roles is opened once.
 */
export async function openStores(choice: StoreChoice): Promise<OpenedStores> {
  const plan = planStores(choice);
  const cache: CacheChoice = choice.cache
    ? choice.cacheMaxStaleness === undefined
      ? {}
      : { maxStaleness: choice.cacheMaxStaleness }
    : false;
  const sessions = await openTarget(plan.sessions, cache, '--store');
  let users: OpenedStore = sessions;
  if (!plan.shared) {
    try {
      users = await openTarget(plan.users, false, '--users');
    } catch (error) {
      await sessions.close();
      throw error;
    }
  }
  const all = plan.shared ? [sessions] : [sessions, users];
  const close = async () => {
    await Promise.all(all.map((store) => store.close()));
  };
  try {
    requireCapability(sessions, 'session index', `--store ${describeTarget(plan.sessions)}`);
    requireCapability(sessions, 'throttle', `--store ${describeTarget(plan.sessions)}`);
    requireCapability(users, 'users', `--users ${describeTarget(plan.users)}`);
    requireCapability(users, 'remember', `--users ${describeTarget(plan.users)}`);
    requireCapability(users, 'second factors', `--users ${describeTarget(plan.users)}`);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    plan,
    sessions: sessions as SessionsStore,
    users: users as UsersStore,
    all,
    close,
  };
}

async function openTarget(
  target: StoreTarget,
  cache: CacheChoice,
  flag: string,
): Promise<OpenedStore> {
  const url = target.url;
  if (url === null) {
    const { SqliteStore } = await import('../stores/sqlite/index.js');
    try {
      return new SqliteStore(target.db);
    } catch (error) {
      // A file that cannot be opened fails the operation (exit 1); it is not a wrong flag.
      throw new Error(`--db ${target.db}: cannot open it (${reason(error)})`, { cause: error });
    }
  }
  const scheme = isStoreUrl(url) ? SCHEMES[schemeOf(url)] : undefined;
  if (!scheme) {
    throw new ConfigError(`${flag}: "${redact(url)}" is not a ${STORE_URLS} URL`);
  }
  try {
    return await scheme.open(url, cache);
  } catch (error) {
    throw new ConfigError(`${flag}: cannot reach ${redact(url)}: ${reason(error)}`);
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
