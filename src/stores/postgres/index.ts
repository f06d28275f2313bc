import pg from 'pg';
import type {
  AttemptRule,
  DataChange,
  DataUpdate,
  ExclusiveSweep,
  LatchkeyStore,
  MigrationReport,
  Migrations,
  ThrottleDecision,
} from '../../core/capabilities.js';
import { ConfigError } from '../../core/errors.js';
import type {
  FactorKind,
  FactorRecord,
  RememberRecord,
  SessionRecord,
  UserRecord,
} from '../../core/store.js';
import { SessionCache, type SessionCacheOptions } from './cache.js';
import { PostgresDatabase } from './database.js';
import { PostgresFactors } from './factors.js';
import { checkSchema, DEFAULT_SCHEMA } from './migrations.js';
import { Invalidations } from './notify.js';
import { checkPool } from './pool.js';
import { PostgresRemember } from './remember.js';
import { PostgresSessions } from './sessions.js';
import { PostgresThrottle } from './throttle.js';
import { PostgresUsers } from './users.js';

export type { MigrationReport } from '../../core/capabilities.js';
export { SessionCache, type SessionCacheOptions } from './cache.js';
export { migrate } from './migrations.js';

/**
 * A `pg.Pool`, typed by the members the store and its users touch, so this package's public
 * types never need `@types/pg` (a `pg.Pool` fits).
 */
export interface PostgresPool {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  end(): Promise<void>;
  readonly totalCount: number;
}

export interface PostgresStoreOptions {
  /** Schema holding latchkey's tables (created if absent). A plain identifier. Default `"latchkey"`. */
  schema?: string;
  /**
   * Validation cache: a bounded in-process LRU of sessions, invalidated by `LISTEN/NOTIFY`, so a
   * repeated validation sends no query and any process's write or delete drops every copy (one
   * extra connection per store, for LISTEN). `true` keeps at most 10,000 entries and serves
   * them only while a heartbeat through LISTEN came back within the last 1,000 ms
   * (`maxStaleness`). Default: off.
   */
  cache?: boolean | SessionCacheOptions;
  /** URL form: how long a call waits for a connection before failing. Default 2,000 ms. */
  connectTimeout?: number;
  /**
   * URL form: how long a query waits for its answer before failing (503), so a network that
   * drops packets without closing anything fails requests instead of hanging them. Default 10,000 ms.
   */
  queryTimeout?: number;
}

/**
 * Sessions, users, login-attempt windows, remember-me tokens and second factors in PostgreSQL
 * (`pg`, PostgreSQL 11+), in one schema. A validation is one primary-key SELECT (or no query at
 * all on a cache hit). Steps that must be atomic are single statements or short transactions
 * under `pg_advisory_xact_lock`, so they hold across any number of pools and processes. A row that
 * does not decode reads as no session.
 *
 * Every write that changes or removes a session also sends `NOTIFY latchkey.<schema>` in the same
 * statement, so validation caches in every process drop their copy when it commits; a writer
 * whose own cache is on resolves only once every listening cache has acknowledged the drop.
 */
export class PostgresStore implements LatchkeyStore, ExclusiveSweep, Migrations {
  /** The pool the store runs on (yours when you passed it in; the store never ends it). */
  readonly pool: PostgresPool;
  readonly schema: string;
  /** The validation cache in use, or null. */
  readonly cache: SessionCache | null;
  private ownsPool = false;
  private closed = false;
  private readonly db: PostgresDatabase;
  private readonly invalidations: Invalidations;
  private readonly sessions: PostgresSessions;
  private readonly users: PostgresUsers;
  private readonly attempts: PostgresThrottle;
  private readonly remembered: PostgresRemember;
  private readonly factors: PostgresFactors;

  /**
   * `pool` is a `pg.Pool` your app created; the store never ends it. Pending migrations run once,
   * before the first call. With the cache on, the store opens one extra connection of its own
   * (same settings as the pool) for LISTEN.
   */
  constructor(pool: PostgresPool, options: PostgresStoreOptions = {}) {
    checkOptions(options);
    const checked = checkPool(pool);
    this.pool = checked;
    this.schema = checkSchema(options.schema ?? DEFAULT_SCHEMA);
    const cache = options.cache ?? false;
    this.cache = cache === false ? null : new SessionCache(cache === true ? {} : cache);
    // An idle client killed by the server is an 'error' on the pool: without a listener it would
    // crash the process. The pool has already discarded the client; the next query reconnects.
    this.db = new PostgresDatabase(checked, this.schema);
    checked.on('error', this.db.ignoreError);
    this.invalidations = new Invalidations(checked, this.schema, this.cache);
    this.sessions = new PostgresSessions(this.db, this.cache, this.invalidations);
    this.users = new PostgresUsers(this.db);
    this.attempts = new PostgresThrottle(this.db);
    this.remembered = new PostgresRemember(this.db);
    this.factors = new PostgresFactors(this.db);
  }

  /**
   * Opens a store on a `postgres://` URL with a pool of its own, applies pending migrations and
   * resolves once PostgreSQL has answered; rejects with the reason otherwise. `close()` ends the pool.
   */
  static async connect(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    if (typeof url !== 'string' || url === '') {
      throw new ConfigError('url: must be a postgres:// connection string');
    }
    checkOptions(options);
    const connectTimeout = options.connectTimeout ?? 2000;
    if (!Number.isInteger(connectTimeout) || connectTimeout < 1) {
      throw new ConfigError('connectTimeout: must be a whole number of milliseconds >= 1');
    }
    const queryTimeout = options.queryTimeout ?? 10_000;
    if (!Number.isInteger(queryTimeout) || queryTimeout < 1) {
      throw new ConfigError('queryTimeout: must be a whole number of milliseconds >= 1');
    }
    checkSchema(options.schema ?? DEFAULT_SCHEMA);
    const pool = new pg.Pool({
      connectionString: url,
      // An unreachable or silent server must fail each call (the core answers 503), not queue
      // or hang it forever.
      connectionTimeoutMillis: connectTimeout,
      query_timeout: queryTimeout,
      keepAlive: true,
    });
    const store = new PostgresStore(pool, options);
    store.ownsPool = true;
    try {
      await store.migrations();
    } catch (error) {
      await store.close();
      // pg reads the URL only when it first connects: a TypeError then is a URL it cannot parse.
      if (error instanceof TypeError)
        throw new ConfigError(`url: ${error.message}`, { cause: error });
      throw readable(error);
    }
    return store;
  }

  /** Applies pending migrations once per store (retried after a failure); gives what was done. */
  migrations(): Promise<MigrationReport> {
    return this.db.migrations();
  }

  create(record: SessionRecord): Promise<void> {
    return this.sessions.create(record);
  }

  createCapped(record: SessionRecord, max: number): Promise<boolean> {
    return this.sessions.createCapped(record, max);
  }

  get(id: string): Promise<SessionRecord | null> {
    return this.sessions.get(id);
  }

  touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    return this.sessions.touch(id, lastSeenAt, idleExpiresAt);
  }

  updateData(id: string, change: DataChange): Promise<DataUpdate> {
    return this.sessions.updateData(id, change);
  }

  delete(id: string): Promise<boolean> {
    return this.sessions.delete(id);
  }

  listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    return this.sessions.listByUser(userId, now);
  }

  deleteByUser(userId: string, exceptId?: string): Promise<number> {
    return this.sessions.deleteByUser(userId, exceptId);
  }

  deleteExpired(now: number): Promise<number> {
    return this.sessions.deleteExpired(now);
  }

  /**
   * Runs `work` (a sweep: `deleteExpired`, `deleteExpiredAttempts`, `deleteExpiredRemember`) only
   * when no other process is sweeping this schema, and gives its result; gives null without
   * running it when another holds the lock (a session-level advisory lock, never waited for).
   */
  sweepExclusive<T>(work: () => Promise<T>): Promise<T | null> {
    return this.db.exclusive(work);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.invalidations.close();
    if (this.ownsPool) await this.pool.end();
    else this.pool.off('error', this.db.ignoreError);
  }

  createUser(user: UserRecord): Promise<boolean> {
    return this.users.create(user);
  }

  findUserById(id: string): Promise<UserRecord | null> {
    return this.users.findById(id);
  }

  findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    return this.users.findByKey(usernameKey);
  }

  listUsers(): Promise<UserRecord[]> {
    return this.users.list();
  }

  updateUser(id: string, changes: { passwordHash?: string; disabled?: boolean }): Promise<boolean> {
    return this.users.update(id, changes);
  }

  /** Takes the user's second factors with the account. */
  deleteUser(id: string): Promise<boolean> {
    return this.users.delete(id);
  }

  consumeAttempt(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision> {
    return this.attempts.consume(key, now, rule);
  }

  resetAttempts(key: string): Promise<void> {
    return this.attempts.reset(key);
  }

  deleteExpiredAttempts(now: number): Promise<number> {
    return this.attempts.deleteExpired(now);
  }

  createRemember(record: RememberRecord): Promise<void> {
    return this.remembered.create(record);
  }

  findRemember(selector: string): Promise<RememberRecord | null> {
    return this.remembered.find(selector);
  }

  rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    return this.remembered.rotate(selector, successor, now);
  }

  deleteRemember(selector: string): Promise<boolean> {
    return this.remembered.delete(selector);
  }

  deleteRememberByUser(userId: string): Promise<number> {
    return this.remembered.deleteByUser(userId);
  }

  deleteExpiredRemember(now: number): Promise<number> {
    return this.remembered.deleteExpired(now);
  }

  createFactor(factor: FactorRecord): Promise<void> {
    return this.factors.create(factor);
  }

  listFactors(userId: string): Promise<FactorRecord[]> {
    return this.factors.list(userId);
  }

  updateFactor(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): Promise<boolean> {
    return this.factors.update(userId, id, changes);
  }

  advanceFactorCounter(userId: string, id: string, counter: number, now: number): Promise<boolean> {
    return this.factors.advanceCounter(userId, id, counter, now);
  }

  deleteFactor(userId: string, id: string): Promise<boolean> {
    return this.factors.delete(userId, id);
  }

  deleteFactors(userId: string, kind?: FactorKind): Promise<number> {
    return this.factors.deleteByUser(userId, kind);
  }
}

/** A ConfigError when `options` is not an options object or its cache option is of no known form. */
function checkOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options: must be an object');
  }
  const { cache } = options as PostgresStoreOptions;
  if (cache !== undefined && typeof cache !== 'boolean' && (typeof cache !== 'object' || !cache)) {
    throw new ConfigError('cache: must be true, false or { maxEntries, maxStaleness }');
  }
}

/** The error to show when PostgreSQL could not be reached (a dual-stack refusal has no message). */
function readable(error: unknown): Error {
  if (error instanceof AggregateError && !error.message) {
    const reasons = error.errors.map((inner) => (inner instanceof Error ? inner.message : inner));
    return new Error(reasons.join('; ') || 'connection failed');
  }
  return error instanceof Error ? error : new Error(String(error));
}
