import Database from 'better-sqlite3';
import type {
  AttemptRule,
  DataChange,
  DataUpdate,
  LatchkeyStore,
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
import { SqliteFactors } from './factors.js';
import { SqliteRemember } from './remember.js';
import { ADDED_COLUMNS, SCHEMA } from './schema.js';
import { SqliteSessions } from './sessions.js';
import { SqliteThrottle } from './throttle.js';
import { SqliteUsers } from './users.js';

/**
 * An open better-sqlite3 database, typed by the members the store and its users touch, so this
 * package's public types never need `@types/better-sqlite3` (a better-sqlite3 `Database` fits).
 */
export interface SqliteDatabase {
  readonly open: boolean;
  prepare(source: string): SqliteStatement;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(source: string): unknown;
  close(): unknown;
}

/** A prepared better-sqlite3 statement, by shape (see {@link SqliteDatabase}). */
export interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

export interface SqliteStoreOptions {
  /** How long a write waits for another process's lock before failing, in ms. Default 5,000. */
  busyTimeout?: number;
}

/**
 * Sessions, users, attempt counters, remember-me tokens and second factors in one SQLite file (better-sqlite3,
 * WAL). Several processes may share the file: steps that must be atomic run in `BEGIN IMMEDIATE`
 * transactions, and waiting on another process's lock gives up after `busyTimeout` (an error,
 * which the core reports as the store being unavailable). A row that does not decode (edited by
 * hand, written by something else) reads as no session.
 */
export class SqliteStore implements LatchkeyStore {
  /** The database the store runs on (yours when you passed it in; the store never closes it). */
  readonly db: SqliteDatabase;
  private readonly ownsDb: boolean;
  private readonly sessions: SqliteSessions;
  private readonly users: SqliteUsers;
  private readonly attempts: SqliteThrottle;
  private readonly remembered: SqliteRemember;
  private readonly factors: SqliteFactors;

  /** `file` is a path (created if absent, `:memory:` for a private database) or an open database. */
  constructor(file: string | SqliteDatabase, options: SqliteStoreOptions = {}) {
    const busyTimeout = checkOptions(file, options);
    this.ownsDb = typeof file === 'string';
    // checkOptions made sure a database passed in is better-sqlite3's.
    const db = typeof file === 'string' ? open(file) : (file as Database.Database);
    this.db = db;
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${busyTimeout}`);
    migrate(db);
    this.sessions = new SqliteSessions(db);
    this.users = new SqliteUsers(db);
    this.attempts = new SqliteThrottle(db);
    this.remembered = new SqliteRemember(db);
    this.factors = new SqliteFactors(db);
  }

  async create(record: SessionRecord): Promise<void> {
    this.sessions.create(record);
  }

  async createCapped(record: SessionRecord, max: number): Promise<boolean> {
    return this.sessions.createCapped(record, max);
  }

  get(id: string): Promise<SessionRecord | null> {
    return this.sessions.get(id);
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    this.sessions.touch(id, lastSeenAt, idleExpiresAt);
  }

  async updateData(id: string, change: DataChange): Promise<DataUpdate> {
    return this.sessions.updateData(id, change);
  }

  async delete(id: string): Promise<boolean> {
    return this.sessions.delete(id);
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    return this.sessions.listByUser(userId, now);
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    return this.sessions.deleteByUser(userId, exceptId);
  }

  deleteExpired(now: number): Promise<number> {
    return this.sessions.deleteExpired(now);
  }

  async close(): Promise<void> {
    if (this.ownsDb && this.db.open) this.db.close();
  }

  async createUser(user: UserRecord): Promise<boolean> {
    return this.users.create(user);
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    return this.users.findById(id);
  }

  async findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    return this.users.findByKey(usernameKey);
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.users.list();
  }

  async updateUser(
    id: string,
    changes: { passwordHash?: string; disabled?: boolean },
  ): Promise<boolean> {
    return this.users.update(id, changes);
  }

  /** Takes the user's second factors with the account. */
  async deleteUser(id: string): Promise<boolean> {
    if (!this.users.delete(id)) return false;
    this.factors.deleteByUser(id);
    return true;
  }

  async consumeAttempt(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision> {
    return this.attempts.consume(key, now, rule);
  }

  async resetAttempts(key: string): Promise<void> {
    this.attempts.reset(key);
  }

  async deleteExpiredAttempts(now: number): Promise<number> {
    return this.attempts.deleteExpired(now);
  }

  async createRemember(record: RememberRecord): Promise<void> {
    this.remembered.create(record);
  }

  async findRemember(selector: string): Promise<RememberRecord | null> {
    return this.remembered.find(selector);
  }

  async rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    return this.remembered.rotate(selector, successor, now);
  }

  async deleteRemember(selector: string): Promise<boolean> {
    return this.remembered.delete(selector);
  }

  async deleteRememberByUser(userId: string): Promise<number> {
    return this.remembered.deleteByUser(userId);
  }

  async deleteExpiredRemember(now: number): Promise<number> {
    return this.remembered.deleteExpired(now);
  }

  async createFactor(factor: FactorRecord): Promise<void> {
    this.factors.create(factor);
  }

  async listFactors(userId: string): Promise<FactorRecord[]> {
    return this.factors.list(userId);
  }

  async updateFactor(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): Promise<boolean> {
    return this.factors.update(userId, id, changes);
  }

  async advanceFactorCounter(
    userId: string,
    id: string,
    counter: number,
    now: number,
  ): Promise<boolean> {
    return this.factors.advanceCounter(userId, id, counter, now);
  }

  async deleteFactor(userId: string, id: string): Promise<boolean> {
    return this.factors.delete(userId, id);
  }

  async deleteFactors(userId: string, kind?: FactorKind): Promise<number> {
    return this.factors.deleteByUser(userId, kind);
  }
}

/**
 * Creates what is missing: the tables, then the columns a file from an earlier version lacks.
 * IMMEDIATE, so two processes opening one old file together add each column once.
 */
function migrate(db: Database.Database): void {
  db.exec(SCHEMA);
  const missing = () =>
    ADDED_COLUMNS.filter(([table, column]) => {
      const columns = db.pragma(`table_info(${table})`) as { name: string }[];
      return !columns.some((c) => c.name === column);
    });
  if (missing().length === 0) return;
  db.transaction(() => {
    for (const [table, column, definition] of missing()) {
      db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
  }).immediate();
}

/** The busy timeout to set, or a ConfigError naming the option that is wrong. */
function checkOptions(file: unknown, options: unknown): number {
  const isDatabase =
    typeof file === 'object' &&
    file !== null &&
    typeof (file as Partial<Database.Database>).prepare === 'function' &&
    typeof (file as Partial<Database.Database>).pragma === 'function';
  if (typeof file !== 'string' && !isDatabase) {
    throw new ConfigError('file: must be a path or an open better-sqlite3 database');
  }
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options: must be an object');
  }
  const busyTimeout = (options as SqliteStoreOptions).busyTimeout ?? 5000;
  if (typeof busyTimeout !== 'number' || !Number.isFinite(busyTimeout) || busyTimeout < 0) {
    throw new ConfigError('busyTimeout: must be a number of milliseconds >= 0');
  }
  return Math.trunc(busyTimeout);
}

/** Opens `file`; a path that cannot be a database file (no such directory) is a bad option. */
function open(file: string): Database.Database {
  try {
    return new Database(file);
  } catch (error) {
    // better-sqlite3 throws TypeError for a path it refuses before any I/O; the rest is I/O.
    if (error instanceof TypeError)
      throw new ConfigError(`file: ${error.message}`, { cause: error });
    throw error;
  }
}
