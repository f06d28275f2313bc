import Database from 'better-sqlite3';
import type {
  CreateResult,
  DataChange,
  DataUpdate,
  JsonObject,
  LatchkeyStore,
  RememberRecord,
  SessionCap,
  SessionRecord,
  ThrottleDecision,
  ThrottleRule,
  UserRecord,
} from '../core/store.js';
import { type AttemptWindow, consumeFrom } from './throttle-window.js';

type Row = {
  id: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  idle_expires_at: number;
  absolute_expires_at: number;
  authenticated_at: number;
  ip: string | null;
  user_agent: string | null;
  user: string;
  data: string;
};

const SCHEMA = `
CREATE TABLE IF NOT EXISTS latchkey_sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  idle_expires_at INTEGER NOT NULL,
  absolute_expires_at INTEGER NOT NULL,
  authenticated_at INTEGER NOT NULL,
  ip TEXT,
  user_agent TEXT,
  user TEXT NOT NULL,
  data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS latchkey_sessions_by_user ON latchkey_sessions (user_id, created_at);
CREATE INDEX IF NOT EXISTS latchkey_sessions_by_expiry ON latchkey_sessions (idle_expires_at);
CREATE TABLE IF NOT EXISTS latchkey_users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  username_key TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  disabled INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latchkey_attempts (
  key TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  window_end INTEGER NOT NULL,
  next_allowed_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS latchkey_attempts_by_end ON latchkey_attempts (window_end);
CREATE TABLE IF NOT EXISTS latchkey_remember (
  selector TEXT PRIMARY KEY,
  validator_hash TEXT NOT NULL,
  user_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  replaced_by TEXT,
  replaced_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS latchkey_remember_by_user ON latchkey_remember (user_id);
CREATE INDEX IF NOT EXISTS latchkey_remember_by_expiry ON latchkey_remember (expires_at);
`;

/** A `get` waiting for its batch. */
interface PendingRead {
  readonly id: string;
  row: RawRow | null;
  readonly resolve: (record: SessionRecord | null) => void;
  readonly reject: (error: unknown) => void;
}

/** The columns of {@link SqliteStore.get}'s statement, in order (the id is the caller's). */
type RawRow = [
  userId: string,
  createdAt: number,
  lastSeenAt: number,
  idleExpiresAt: number,
  absoluteExpiresAt: number,
  authenticatedAt: number,
  ip: string | null,
  userAgent: string | null,
  user: string,
  data: string,
];

type UserRow = {
  id: string;
  username: string;
  username_key: string;
  password_hash: string;
  created_at: number;
  disabled: number;
};

type RememberRow = {
  selector: string;
  validator_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  replaced_by: string | null;
  replaced_at: number | null;
};

/**
 * Sessions, users, attempt counters and remember-me tokens in one SQLite file (better-sqlite3,
 * WAL). Several processes may share the file: steps that must be atomic run in `BEGIN IMMEDIATE`
 * transactions, and waiting on another process's lock gives up after `busyTimeout` (an error,
 * which the core reports as the store being unavailable).
 */
export class SqliteStore implements LatchkeyStore {
  readonly db: Database.Database;
  private readonly ownsDb: boolean;
  private readonly statements;
  private readonly createCapped;
  private readonly consume;
  private readonly rotate;
  private readonly readMany;
  /** Lookups waiting for the next batch (see {@link get}). */
  private pending: PendingRead[] = [];
  /** `updateData` statements by shape (keys removed, keys set): a JSON path is one parameter. */
  private readonly merges = new Map<string, Database.Statement>();
  private exists: Database.Statement<[string], number> | null = null;

  /** `file` is a path (created if absent, `:memory:` for a private database) or an open database. */
  constructor(file: string | Database.Database, options: { busyTimeout?: number } = {}) {
    this.ownsDb = typeof file === 'string';
    this.db = typeof file === 'string' ? new Database(file) : file;
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeout ?? 5000)}`);
    this.db.exec(SCHEMA);
    const db = this.db;
    this.statements = {
      insert: db.prepare(
        `INSERT INTO latchkey_sessions (id, user_id, created_at, last_seen_at, idle_expires_at,
           absolute_expires_at, authenticated_at, ip, user_agent, user, data)
         VALUES (@id, @user_id, @created_at, @last_seen_at, @idle_expires_at, @absolute_expires_at,
           @authenticated_at, @ip, @user_agent, @user, @data)`,
      ),
      // Raw rows (arrays) in a fixed column order: better-sqlite3 builds a keyed object per row
      // column by column, which cost more than the lookup itself (see fromRaw).
      get: db
        .prepare<[string], RawRow>(
          `SELECT user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at,
             authenticated_at, ip, user_agent, user, data FROM latchkey_sessions WHERE id = ?`,
        )
        .raw(true),
      touch: db.prepare(
        'UPDATE latchkey_sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?',
      ),
      delete: db.prepare('DELETE FROM latchkey_sessions WHERE id = ?'),
      liveByUser: db.prepare<[string, number], Row>(
        'SELECT * FROM latchkey_sessions WHERE user_id = ? AND idle_expires_at > ? ORDER BY created_at, id',
      ),
      deleteDeadOfUser: db.prepare(
        'DELETE FROM latchkey_sessions WHERE user_id = ? AND idle_expires_at <= ?',
      ),
      deleteByUser: db.prepare('DELETE FROM latchkey_sessions WHERE user_id = ? AND id IS NOT ?'),
      deleteExpired: db.prepare(
        'DELETE FROM latchkey_sessions WHERE id IN (SELECT id FROM latchkey_sessions WHERE idle_expires_at <= ? LIMIT 1000)',
      ),
      insertUser: db.prepare(
        `INSERT INTO latchkey_users (id, username, username_key, password_hash, created_at, disabled)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      userById: db.prepare<[string], UserRow>('SELECT * FROM latchkey_users WHERE id = ?'),
      userByKey: db.prepare<[string], UserRow>(
        'SELECT * FROM latchkey_users WHERE username_key = ?',
      ),
      users: db.prepare<[], UserRow>('SELECT * FROM latchkey_users ORDER BY created_at, id'),
      updateUser: db.prepare(
        `UPDATE latchkey_users SET password_hash = coalesce(?, password_hash),
           disabled = coalesce(?, disabled) WHERE id = ?`,
      ),
      deleteUser: db.prepare('DELETE FROM latchkey_users WHERE id = ?'),
      attempt: db.prepare<[string], AttemptWindow>(
        'SELECT count, window_end AS windowEnd, next_allowed_at AS nextAllowedAt FROM latchkey_attempts WHERE key = ?',
      ),
      saveAttempt: db.prepare(
        `INSERT INTO latchkey_attempts (key, count, window_end, next_allowed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET count = excluded.count, window_end = excluded.window_end,
           next_allowed_at = excluded.next_allowed_at`,
      ),
      resetAttempts: db.prepare('DELETE FROM latchkey_attempts WHERE key = ?'),
      deleteExpiredAttempts: db.prepare('DELETE FROM latchkey_attempts WHERE window_end <= ?'),
      insertRemember: db.prepare(
        `INSERT INTO latchkey_remember (selector, validator_hash, user_id, created_at, expires_at,
           replaced_by, replaced_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      remember: db.prepare<[string], RememberRow>(
        'SELECT * FROM latchkey_remember WHERE selector = ?',
      ),
      replaceRemember: db.prepare(
        `UPDATE latchkey_remember SET replaced_by = ?, replaced_at = ?
         WHERE selector = ? AND replaced_by IS NULL`,
      ),
      deleteRemember: db.prepare('DELETE FROM latchkey_remember WHERE selector = ?'),
      deleteRememberByUser: db.prepare('DELETE FROM latchkey_remember WHERE user_id = ?'),
      deleteExpiredRemember: db.prepare('DELETE FROM latchkey_remember WHERE expires_at <= ?'),
    };
    this.consume = db.transaction((key: string, now: number, rule: ThrottleRule) => {
      const { decision, save } = consumeFrom(this.statements.attempt.get(key) ?? null, now, rule);
      if (save)
        this.statements.saveAttempt.run(key, save.count, save.windowEnd, save.nextAllowedAt);
      return decision;
    });
    this.rotate = db.transaction((selector: string, successor: RememberRecord, now: number) => {
      if (this.statements.replaceRemember.run(successor.selector, now, selector).changes === 0) {
        return false;
      }
      this.insertRemember(successor);
      return true;
    });
    // One read transaction for a batch of lookups: in WAL mode each transaction takes and drops a
    // shared lock on the -shm file (two fcntl calls), which cost more than the lookup itself.
    this.readMany = db.transaction((batch: PendingRead[]) => {
      const get = this.statements.get;
      for (const read of batch) read.row = get.get(read.id) ?? null;
    });
    this.createCapped = db.transaction((record: SessionRecord, cap: SessionCap): CreateResult => {
      const { deleteDeadOfUser, liveByUser, delete: remove, insert } = this.statements;
      deleteDeadOfUser.run(record.userId, record.createdAt);
      const live = liveByUser.all(record.userId, record.createdAt);
      const evicted: string[] = [];
      if (live.length >= cap.max) {
        if (cap.policy === 'reject') return { created: false, evicted };
        for (const old of live.slice(0, live.length - cap.max + 1)) {
          remove.run(old.id);
          evicted.push(old.id);
        }
      }
      insert.run(toRow(record));
      return { created: true, evicted };
    });
  }

  async create(record: SessionRecord, cap?: SessionCap): Promise<CreateResult> {
    if (!cap) {
      this.statements.insert.run(toRow(record));
      return { created: true, evicted: [] };
    }
    // IMMEDIATE takes the write lock before counting, so processes sharing the file serialise here.
    return this.createCapped.immediate(record, cap);
  }

  /**
   * Lookups are batched: every `get` issued in one turn of the event loop (under load, the
   * requests of many connections) is answered from one read transaction, run from
   * `setImmediate`, so they share one WAL lock instead of taking one each. A lookup never waits
   * for more than the rest of the current turn. Each answer is what the database held when the
   * batch ran, after any write made before it.
   */
  get(id: string): Promise<SessionRecord | null> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ id, row: null, resolve, reject }) === 1) setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    const batch = this.pending;
    this.pending = [];
    try {
      if (batch.length === 1 || this.db.inTransaction) {
        for (const read of batch) read.row = this.statements.get.get(read.id) ?? null;
      } else {
        this.readMany(batch);
      }
    } catch (error) {
      for (const read of batch) read.reject(error);
      return;
    }
    for (const read of batch) {
      try {
        read.resolve(read.row ? fromRaw(read.id, read.row) : null);
      } catch (error) {
        read.reject(error); // a row whose JSON does not parse fails its own lookup only
      }
    }
  };

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    this.statements.touch.run(lastSeenAt, idleExpiresAt, id);
  }

  /**
   * One UPDATE (`json_set` over `json_remove`, on the row as it is when the write lock is held),
   * so processes sharing the file never lose one another's keys. SQLite keeps the JSON text of
   * values it does not touch as it was. The size check is in the same statement's WHERE; only
   * telling "too large" from "missing" afterwards is a second read.
   */
  async updateData(id: string, change: DataChange): Promise<DataUpdate> {
    const set = Object.entries(change.set);
    const values: Record<string, string | number> = { id, max: change.maxBytes };
    change.remove.forEach((key, i) => {
      values[`r${i}`] = jsonPath(key);
    });
    set.forEach(([key, value], i) => {
      values[`k${i}`] = jsonPath(key);
      values[`v${i}`] = JSON.stringify(value);
    });
    if (this.mergeStatement(change.remove.length, set.length).run(values).changes > 0) {
      return 'updated';
    }
    this.exists ??= this.db
      .prepare<[string], number>('SELECT 1 FROM latchkey_sessions WHERE id = ?')
      .pluck();
    return this.exists.get(id) === undefined ? 'missing' : 'too_large';
  }

  private mergeStatement(removed: number, set: number): Database.Statement {
    const shape = `${removed}:${set}`;
    let statement = this.merges.get(shape);
    if (!statement) {
      let merged = 'data';
      if (removed > 0) {
        const paths = Array.from({ length: removed }, (_, i) => `@r${i}`);
        merged = `json_remove(${merged}, ${paths.join(', ')})`;
      }
      if (set > 0) {
        const pairs = Array.from({ length: set }, (_, i) => `@k${i}, json(@v${i})`);
        merged = `json_set(${merged}, ${pairs.join(', ')})`;
      }
      statement = this.db.prepare(
        `UPDATE latchkey_sessions SET data = ${merged} WHERE id = @id
           AND length(CAST(${merged} AS BLOB)) <= max(@max, length(CAST(data AS BLOB)))`,
      );
      // Shapes are few in practice; a caller inventing new ones never grows this without bound.
      if (this.merges.size >= 256) this.merges.clear();
      this.merges.set(shape, statement);
    }
    return statement;
  }

  async delete(id: string): Promise<boolean> {
    return this.statements.delete.run(id).changes > 0;
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    return this.statements.liveByUser.all(userId, now).map(fromRow);
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    return this.statements.deleteByUser.run(userId, exceptId ?? null).changes;
  }

  /** Deletes in batches of 1,000 so a large sweep never holds the write lock for long. */
  async deleteExpired(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const { changes } = this.statements.deleteExpired.run(now);
      total += changes;
      if (changes === 0) return total;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async close(): Promise<void> {
    if (this.ownsDb && this.db.open) this.db.close();
  }

  async createUser(user: UserRecord): Promise<boolean> {
    const { id, username, usernameKey, passwordHash, createdAt, disabled } = user;
    const inserted = this.statements.insertUser.run(
      id,
      username,
      usernameKey,
      passwordHash,
      createdAt,
      disabled ? 1 : 0,
    );
    return inserted.changes > 0;
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    const row = this.statements.userById.get(id);
    return row ? userFromRow(row) : null;
  }

  async findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    const row = this.statements.userByKey.get(usernameKey);
    return row ? userFromRow(row) : null;
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.statements.users.all().map(userFromRow);
  }

  async updateUser(
    id: string,
    changes: { passwordHash?: string; disabled?: boolean },
  ): Promise<boolean> {
    const disabled = changes.disabled === undefined ? null : changes.disabled ? 1 : 0;
    return this.statements.updateUser.run(changes.passwordHash ?? null, disabled, id).changes > 0;
  }

  async deleteUser(id: string): Promise<boolean> {
    return this.statements.deleteUser.run(id).changes > 0;
  }

  async consumeAttempt(key: string, now: number, rule: ThrottleRule): Promise<ThrottleDecision> {
    return this.consume.immediate(key, now, rule);
  }

  async resetAttempts(key: string): Promise<void> {
    this.statements.resetAttempts.run(key);
  }

  async deleteExpiredAttempts(now: number): Promise<number> {
    return this.statements.deleteExpiredAttempts.run(now).changes;
  }

  async createRemember(record: RememberRecord): Promise<void> {
    this.insertRemember(record);
  }

  async findRemember(selector: string): Promise<RememberRecord | null> {
    const row = this.statements.remember.get(selector);
    return row
      ? {
          selector: row.selector,
          validatorHash: row.validator_hash,
          userId: row.user_id,
          createdAt: row.created_at,
          expiresAt: row.expires_at,
          replacedBy: row.replaced_by,
          replacedAt: row.replaced_at,
        }
      : null;
  }

  async rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    return this.rotate.immediate(selector, successor, now);
  }

  async deleteRemember(selector: string): Promise<boolean> {
    return this.statements.deleteRemember.run(selector).changes > 0;
  }

  async deleteRememberByUser(userId: string): Promise<number> {
    return this.statements.deleteRememberByUser.run(userId).changes;
  }

  async deleteExpiredRemember(now: number): Promise<number> {
    return this.statements.deleteExpiredRemember.run(now).changes;
  }

  private insertRemember(record: RememberRecord): void {
    this.statements.insertRemember.run(
      record.selector,
      record.validatorHash,
      record.userId,
      record.createdAt,
      record.expiresAt,
      record.replacedBy,
      record.replacedAt,
    );
  }
}

function userFromRow(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    usernameKey: row.username_key,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    disabled: row.disabled === 1,
  };
}

function toRow(record: SessionRecord): Row {
  return {
    id: record.id,
    user_id: record.userId,
    created_at: record.createdAt,
    last_seen_at: record.lastSeenAt,
    idle_expires_at: record.idleExpiresAt,
    absolute_expires_at: record.absoluteExpiresAt,
    authenticated_at: record.authenticatedAt,
    ip: record.ip,
    user_agent: record.userAgent,
    user: JSON.stringify(record.user),
    data: JSON.stringify(record.data),
  };
}

/** The validation path: one object literal, so every record has the same shape. */
function fromRaw(id: string, row: RawRow): SessionRecord {
  return {
    id,
    userId: row[0],
    createdAt: row[1],
    lastSeenAt: row[2],
    idleExpiresAt: row[3],
    absoluteExpiresAt: row[4],
    authenticatedAt: row[5],
    ip: row[6],
    userAgent: row[7],
    user: parseObject(row[8]),
    data: parseObject(row[9]),
  };
}

/** A JSON path naming one top-level key, whatever characters it holds (`$."a.b"`). */
function jsonPath(key: string): string {
  return `$.${JSON.stringify(key)}`;
}

/** Most `data` (and many snapshots) are empty: no parser call for those. */
function parseObject(json: string): JsonObject {
  return json === '{}' ? {} : JSON.parse(json);
}

function fromRow(row: Row): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    idleExpiresAt: row.idle_expires_at,
    absoluteExpiresAt: row.absolute_expires_at,
    authenticatedAt: row.authenticated_at,
    ip: row.ip,
    userAgent: row.user_agent,
    user: JSON.parse(row.user),
    data: JSON.parse(row.data),
  };
}
