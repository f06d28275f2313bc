import { createHash, randomBytes } from 'node:crypto';
import pg, { type Notification, type Pool, type PoolClient, type QueryResultRow } from 'pg';
import { ConfigError } from '../core/errors.js';
import type {
  CreateResult,
  DataChange,
  DataUpdate,
  LatchkeyStore,
  RememberRecord,
  SessionCap,
  SessionRecord,
  ThrottleDecision,
  ThrottleRule,
  UserRecord,
} from '../core/store.js';
import { type AttemptWindow, consumeFrom } from './throttle-window.js';

export interface PostgresStoreOptions {
  /** Schema holding latchkey's tables (created if absent). A plain identifier. Default `"latchkey"`. */
  schema?: string;
  /**
   * Validation cache: a bounded in-process LRU of sessions, invalidated by `LISTEN/NOTIFY`, so a
   * repeated validation sends no query and any process's write or delete drops every copy (one
   * extra connection per store, for LISTEN). `true` keeps at most 10,000 entries. Default: off.
   */
  cache?: boolean | { maxEntries?: number };
  /** URL form: how long a call waits for a connection before failing. Default 2,000 ms. */
  connectTimeout?: number;
}

/** What {@link migrate} did: versions applied by this call, and the schema's version after it. */
export interface MigrationReport {
  readonly applied: readonly number[];
  readonly version: number;
}

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: (schema: string) => string;
}

/**
 * Versioned schema changes, applied in order, each once, each in its own transaction. Append only:
 * a released migration is never edited. Ids are `COLLATE "C"` (byte order, like SQLite), times are
 * epoch milliseconds (BIGINT), JSON is TEXT so it round-trips byte for byte.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sessions, users, attempts, remember-me tokens',
    sql: (s) => `
CREATE TABLE ${s}.latchkey_sessions (
  id TEXT COLLATE "C" PRIMARY KEY,
  user_id TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  idle_expires_at BIGINT NOT NULL,
  absolute_expires_at BIGINT NOT NULL,
  authenticated_at BIGINT NOT NULL,
  ip TEXT,
  user_agent TEXT,
  "user" TEXT NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX latchkey_sessions_by_user ON ${s}.latchkey_sessions (user_id, created_at, id);
CREATE INDEX latchkey_sessions_by_expiry ON ${s}.latchkey_sessions (idle_expires_at);
CREATE TABLE ${s}.latchkey_users (
  id TEXT COLLATE "C" PRIMARY KEY,
  username TEXT NOT NULL,
  username_key TEXT COLLATE "C" NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  disabled BOOLEAN NOT NULL
);
CREATE TABLE ${s}.latchkey_attempts (
  key TEXT COLLATE "C" PRIMARY KEY,
  count INTEGER NOT NULL,
  window_end BIGINT NOT NULL,
  next_allowed_at BIGINT NOT NULL
);
CREATE INDEX latchkey_attempts_by_end ON ${s}.latchkey_attempts (window_end);
CREATE TABLE ${s}.latchkey_remember (
  selector TEXT COLLATE "C" PRIMARY KEY,
  validator_hash TEXT NOT NULL,
  user_id TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  replaced_by TEXT,
  replaced_at BIGINT
);
CREATE INDEX latchkey_remember_by_user ON ${s}.latchkey_remember (user_id);
CREATE INDEX latchkey_remember_by_expiry ON ${s}.latchkey_remember (expires_at);`,
  },
];

const DEFAULT_SCHEMA = 'latchkey';
const SWEEP_BATCH = 1000;
/** Longest a write waits for the caches' acknowledgements before it resolves anyway. */
const ACK_TIMEOUT_MS = 1000;
/** A LISTEN connection that died silently (no RST) is noticed within about twice this. */
const LISTENER_HEARTBEAT_MS = 2000;

function checkSchema(schema: unknown): string {
  // Fits NAMEDATALEN with the channel prefix; quoted everywhere, so the case is kept.
  if (typeof schema !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,47}$/.test(schema)) {
    throw new ConfigError(
      `schema: must be a plain identifier (letters, digits, _; at most 48 characters), got ${JSON.stringify(schema)}`,
    );
  }
  return schema;
}

/**
 * Applies pending migrations to `schema` (default `latchkey`), creating it if needed. Holds a
 * session-level `pg_advisory_lock` for the whole run, so any number of processes may call it at
 * once: one applies each version, the others wait and find nothing left to do.
 */
export async function migrate(
  pool: Pool,
  options: { schema?: string } = {},
): Promise<MigrationReport> {
  const schema = checkSchema(options.schema ?? DEFAULT_SCHEMA);
  const s = `"${schema}"`;
  const client = await pool.connect();
  const ignore = (): void => {};
  client.on('error', ignore);
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [
      `latchkey migrate ${schema}`,
    ]);
    try {
      // Checked first: CREATE SCHEMA needs a privilege an existing schema does not.
      const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.latchkey_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
      const done = await client.query<{ version: number }>(
        `SELECT version FROM ${s}.latchkey_migrations`,
      );
      const known = new Set(done.rows.map((row) => row.version));
      const applied: number[] = [];
      for (const migration of MIGRATIONS) {
        if (known.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql(s));
          await client.query(
            `INSERT INTO ${s}.latchkey_migrations (version, name) VALUES ($1, $2)`,
            [migration.version, migration.name],
          );
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
        applied.push(migration.version);
        known.add(migration.version);
      }
      return { applied, version: Math.max(0, ...known) };
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [
        `latchkey migrate ${schema}`,
      ]);
    }
  } catch (error) {
    broken = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.off('error', ignore);
    // A client that failed mid-way may hold the lock or a transaction: destroy it, never reuse it.
    client.release(broken);
  }
}

type Row = {
  id: string;
  user_id: string;
  created_at: string;
  last_seen_at: string;
  idle_expires_at: string;
  absolute_expires_at: string;
  authenticated_at: string;
  ip: string | null;
  user_agent: string | null;
  user: string;
  data: string;
};

type UserRow = {
  id: string;
  username: string;
  username_key: string;
  password_hash: string;
  created_at: string;
  disabled: boolean;
};

type RememberRow = {
  selector: string;
  validator_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
  replaced_by: string | null;
  replaced_at: string | null;
};

/** A write waiting to hear from `expected` caches. */
interface Waiter {
  heard: number;
  expected: number;
  done(): void;
}

/**
 * The number of caches listening on the schema's channel, as a column named `listeners`. NOTIFY
 * stays inside one database, so caches of the same schema name in other databases never answer
 * and must not be waited for.
 */
const LISTENERS = (parameter: string): string =>
  `(SELECT count(*)::int FROM pg_stat_activity WHERE application_name = ${parameter} AND datname = current_database()) AS listeners`;

/** How many caches a statement that NOTIFYs per row reached (0 when it sent nothing). */
function notifiedBy(result: pg.QueryResult): number {
  const row = result.rows[0] as { listeners?: number } | undefined;
  return row?.listeners ?? 0;
}

/** A read in flight: it may fill the cache only if nothing touching its id happened meanwhile. */
interface Ticket {
  readonly id: string;
  readonly epoch: number;
  dirty: boolean;
}

/**
 * The validation cache: a bounded LRU of session rows, consulted only while the LISTEN connection
 * is up. When that connection drops, invalidations sent meanwhile are lost, so the cache empties
 * and stays off (every read goes to PostgreSQL) until LISTEN is in place again.
 */
export class SessionCache {
  readonly maxEntries: number;
  private readonly entries = new Map<string, Row>();
  private readonly inflight = new Set<Ticket>();
  private isActive = false;
  private epoch = 0;
  private hits = 0;
  private misses = 0;

  constructor(options: { maxEntries?: number } = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new ConfigError('cache.maxEntries: must be a whole number >= 1');
    }
    this.maxEntries = maxEntries;
  }

  /** False while the LISTEN connection is down (every read then goes to PostgreSQL). */
  get active(): boolean {
    return this.isActive;
  }

  size(): number {
    return this.entries.size;
  }

  stats(): { hitCount: number; missCount: number } {
    return { hitCount: this.hits, missCount: this.misses };
  }

  /** A live entry (by this process's clock), freshly copied so callers may not alter the cache. */
  lookup(id: string): SessionRecord | null {
    const row = this.isActive ? this.entries.get(id) : undefined;
    if (!row || Number(row.idle_expires_at) <= Date.now()) {
      if (row) this.entries.delete(id);
      this.misses++;
      return null;
    }
    this.entries.delete(id);
    this.entries.set(id, row);
    this.hits++;
    return fromRow(row);
  }

  begin(id: string): Ticket {
    const ticket = { id, epoch: this.epoch, dirty: false };
    this.inflight.add(ticket);
    return ticket;
  }

  /** Keeps what a read found, unless the cache was off or its id was invalidated since it began. */
  finish(ticket: Ticket, row: Row | undefined): void {
    this.inflight.delete(ticket);
    if (!row || ticket.dirty || ticket.epoch !== this.epoch || !this.isActive) return;
    this.entries.delete(row.id);
    this.entries.set(row.id, row);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  invalidate(id: string): void {
    this.entries.delete(id);
    for (const ticket of this.inflight) if (ticket.id === id) ticket.dirty = true;
  }

  invalidateUser(userId: string): void {
    for (const [id, row] of this.entries) if (row.user_id === userId) this.entries.delete(id);
    this.dirtyAll();
  }

  invalidateDeadAt(now: number): void {
    for (const [id, row] of this.entries) {
      if (Number(row.idle_expires_at) <= now) this.entries.delete(id);
    }
    this.dirtyAll();
  }

  /** Empties the cache and switches it on (LISTEN in place) or off (connection lost). */
  reset(active: boolean): void {
    this.entries.clear();
    this.dirtyAll();
    this.epoch++;
    this.isActive = active;
  }

  private dirtyAll(): void {
    for (const ticket of this.inflight) ticket.dirty = true;
  }
}

/**
 * Sessions, users, login-attempt windows and remember-me tokens in PostgreSQL (`pg`, PostgreSQL
 * 11+), in one schema. A validation is one primary-key SELECT (or no query at all on a cache hit).
 * Steps that must be atomic are single statements or short transactions under
 * `pg_advisory_xact_lock`, so they hold across any number of pools and processes.
 *
 * Every write that changes or removes a session also sends `NOTIFY latchkey.<schema>` in the same
 * statement, so validation caches in every process drop their copy when it commits; a writer
 * whose own cache is on resolves only once every listening cache has acknowledged the drop.
 */
export class PostgresStore implements LatchkeyStore {
  readonly pool: Pool;
  readonly schema: string;
  /** The validation cache in use, or null. */
  readonly cache: SessionCache | null;
  private ownsPool = false;
  private readonly t: {
    sessions: string;
    users: string;
    attempts: string;
    remember: string;
  };
  private readonly channel: string;
  private readonly ackChannel: string;
  private readonly listenerName: string;
  private readonly names: string;
  private readonly instance = randomBytes(6).toString('base64url');
  private sequence = 0;
  private migration: Promise<MigrationReport> | null = null;
  private migrated = false;
  private closed = false;
  private listener: pg.Client | null = null;
  private listenerRetries = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Writes waiting for the caches' acknowledgements, by nonce. */
  private readonly waiters = new Map<string, Waiter>();
  private readonly ignoreError = (): void => {};

  /**
   * `pool` is a `pg.Pool` your app created; the store never ends it. Pending migrations run once,
   * before the first call. With the cache on, the store opens one extra connection of its own
   * (same settings as the pool) for LISTEN.
   */
  constructor(pool: Pool, options: PostgresStoreOptions = {}) {
    this.schema = checkSchema(options.schema ?? DEFAULT_SCHEMA);
    this.pool = pool;
    // An idle client killed by the server is an 'error' on the pool: without a listener it would
    // crash the process. The pool has already discarded the client; the next query reconnects.
    pool.on('error', this.ignoreError);
    const s = `"${this.schema}"`;
    this.t = {
      sessions: `${s}.latchkey_sessions`,
      users: `${s}.latchkey_users`,
      attempts: `${s}.latchkey_attempts`,
      remember: `${s}.latchkey_remember`,
    };
    this.channel = `latchkey.${this.schema}`;
    this.ackChannel = `latchkey.ack.${this.instance}`;
    // Set on a LISTEN connection once it listens: how writers count the caches to hear from.
    this.listenerName = `latchkey cache ${this.schema}`;
    // Prepared-statement names must stay under 64 bytes and differ per schema.
    this.names = `lk_${createHash('sha256').update(this.schema).digest('hex').slice(0, 10)}_`;
    const cacheOption = options.cache ?? false;
    this.cache =
      cacheOption === false ? null : new SessionCache(cacheOption === true ? {} : cacheOption);
    if (this.cache) this.listen();
  }

  /**
   * Opens a store on a `postgres://` URL with a pool of its own, applies pending migrations and
   * resolves once PostgreSQL has answered; rejects with the reason otherwise. `close()` ends the pool.
   */
  static async connect(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const connectTimeout = options.connectTimeout ?? 2000;
    if (!Number.isInteger(connectTimeout) || connectTimeout < 1) {
      throw new ConfigError('connectTimeout: must be a whole number of milliseconds >= 1');
    }
    checkSchema(options.schema ?? DEFAULT_SCHEMA);
    const pool = new pg.Pool({
      connectionString: url,
      // An unreachable server must fail each call (the core answers 503), not queue it forever.
      connectionTimeoutMillis: connectTimeout,
      keepAlive: true,
    });
    const store = new PostgresStore(pool, options);
    store.ownsPool = true;
    try {
      await store.migrations();
    } catch (error) {
      await store.close();
      throw readable(error);
    }
    return store;
  }

  /** Applies pending migrations once per store (retried after a failure); gives what was done. */
  migrations(): Promise<MigrationReport> {
    if (!this.migration) {
      this.migration = migrate(this.pool, { schema: this.schema }).then(
        (report) => {
          this.migrated = true;
          return report;
        },
        (error: unknown) => {
          this.migration = null;
          throw error;
        },
      );
    }
    return this.migration;
  }

  async create(record: SessionRecord, cap?: SessionCap): Promise<CreateResult> {
    if (!cap) {
      await this.query(this.insertSession(record));
      return { created: true, evicted: [] };
    }
    const { result } = await this.acknowledged(
      (nonce) => this.createCapped(record, cap, nonce),
      (outcome) => outcome.listeners,
    );
    return result;
  }

  private createCapped(
    record: SessionRecord,
    cap: SessionCap,
    nonce: string,
  ): Promise<{ result: CreateResult; listeners: number }> {
    return this.transaction(async (client) => {
      // Serialises creates for one user across every process; released at COMMIT/ROLLBACK.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `${this.names}user ${record.userId}`,
      ]);
      const live = await client.query<{ id: string }>({
        name: `${this.names}live-ids`,
        text: `SELECT id FROM ${this.t.sessions} WHERE user_id = $1 AND idle_expires_at > $2
               ORDER BY created_at, id`,
        values: [record.userId, record.createdAt],
      });
      const evicted: string[] = [];
      let listeners = 0;
      if (live.rows.length >= cap.max) {
        if (cap.policy === 'reject') return { result: { created: false, evicted }, listeners };
        for (const old of live.rows.slice(0, live.rows.length - cap.max + 1)) evicted.push(old.id);
        for (const id of evicted) this.cache?.invalidate(id);
        listeners = notifiedBy(
          await client.query({
            name: `${this.names}evict`,
            text: `WITH gone AS (DELETE FROM ${this.t.sessions} WHERE id = ANY($1) RETURNING id)
                   SELECT pg_notify($2, $3 || ' d ' || id), ${LISTENERS('$4')} FROM gone`,
            values: [evicted, this.channel, nonce, this.listenerName],
          }),
        );
      }
      await client.query(this.insertSession(record));
      return { result: { created: true, evicted }, listeners };
    });
  }

  async get(id: string): Promise<SessionRecord | null> {
    if (!this.migrated) await this.migrations();
    const cache = this.cache;
    if (cache?.active) {
      // An invalidation that reached our socket together with the answer that led here is read
      // first: one turn of the event loop lets the LISTEN connection's data through.
      await new Promise((resolve) => setImmediate(resolve));
      const hit = cache.lookup(id);
      if (hit) return hit;
    }
    const ticket = cache?.begin(id);
    let row: Row | undefined;
    try {
      const result = await this.pool.query<Row>({
        name: `${this.names}get`,
        text: `SELECT * FROM ${this.t.sessions} WHERE id = $1`,
        values: [id],
      });
      row = result.rows[0];
    } finally {
      if (ticket) cache?.finish(ticket, row);
    }
    return row ? fromRow(row) : null;
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    await this.notifying(id, (nonce) => ({
      name: `${this.names}touch`,
      text: `WITH t AS (UPDATE ${this.t.sessions} SET last_seen_at = $2, idle_expires_at = $3
               WHERE id = $1 RETURNING id)
             SELECT pg_notify($4, $5 || ' d ' || id), ${LISTENERS('$6')} FROM t`,
      values: [id, lastSeenAt, idleExpiresAt, this.channel, nonce, this.listenerName],
    }));
  }

  /**
   * One UPDATE computing the merge from the row it has locked (READ COMMITTED re-reads a row
   * changed meanwhile), so parallel updates from any process never lose one another; it sends the
   * same NOTIFY as every session write, so validation caches drop the old copy before it resolves.
   * The merge goes through jsonb: keys come back in jsonb's order and numbers as jsonb prints them
   * (the same values), and a record whose `data` holds U+0000 cannot be merged (an error). The
   * size is measured on jsonb's text, before and after. Only telling "too large" from "missing",
   * after a refusal, is a second read.
   */
  async updateData(id: string, change: DataChange): Promise<DataUpdate> {
    const merged = '((data::jsonb - $3::text[]) || $2::jsonb)::text';
    const updated = await this.notifying(id, (nonce) => ({
      name: `${this.names}update-data`,
      text: `WITH u AS (UPDATE ${this.t.sessions} SET data = ${merged}
               WHERE id = $1 AND octet_length(${merged}) <= greatest($4, octet_length(data::jsonb::text))
               RETURNING id)
             SELECT pg_notify($5, $6 || ' d ' || id), ${LISTENERS('$7')} FROM u`,
      values: [
        id,
        JSON.stringify(change.set),
        change.remove,
        change.maxBytes,
        this.channel,
        nonce,
        this.listenerName,
      ],
    }));
    if (updated > 0) return 'updated';
    const { rowCount } = await this.query({
      name: `${this.names}exists`,
      text: `SELECT 1 FROM ${this.t.sessions} WHERE id = $1`,
      values: [id],
    });
    return rowCount ? 'too_large' : 'missing';
  }

  async delete(id: string): Promise<boolean> {
    const deleted = await this.notifying(id, (nonce) => ({
      name: `${this.names}delete`,
      text: `WITH gone AS (DELETE FROM ${this.t.sessions} WHERE id = $1 RETURNING id)
             SELECT pg_notify($2, $3 || ' d ' || id), ${LISTENERS('$4')} FROM gone`,
      values: [id, this.channel, nonce, this.listenerName],
    }));
    return deleted > 0;
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    const { rows } = await this.query<Row>({
      name: `${this.names}list`,
      text: `SELECT * FROM ${this.t.sessions} WHERE user_id = $1 AND idle_expires_at > $2
             ORDER BY created_at, id`,
      values: [userId, now],
    });
    return rows.map(fromRow);
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    this.cache?.invalidateUser(userId);
    const { n } = await this.acknowledged(
      (nonce) =>
        this.counted({
          name: `${this.names}delete-user`,
          text: `WITH gone AS (DELETE FROM ${this.t.sessions}
                   WHERE user_id = $1 AND id IS DISTINCT FROM $2 RETURNING id)
                 SELECT n, CASE WHEN n > 0 THEN pg_notify($3, $4) END, ${LISTENERS('$5')}
                 FROM (SELECT count(*)::int AS n FROM gone) AS c`,
          values: [
            userId,
            exceptId ?? null,
            this.channel,
            `${nonce} u ${userId}`,
            this.listenerName,
          ],
        }),
      (outcome) => (outcome.n > 0 ? outcome.listeners : 0),
    );
    return n;
  }

  /**
   * Deletes in batches of 1,000 rows (each its own short statement, locked rows skipped) so a
   * large sweep never holds many locks for long; each batch tells caches to drop what died.
   */
  async deleteExpired(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const { n } = await this.acknowledged(
        (nonce) =>
          this.counted({
            name: `${this.names}sweep-sessions`,
            text: `WITH doomed AS (SELECT id FROM ${this.t.sessions} WHERE idle_expires_at <= $1
                 LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED),
               gone AS (DELETE FROM ${this.t.sessions} AS s USING doomed
                 WHERE s.id = doomed.id AND s.idle_expires_at <= $1 RETURNING s.id)
               SELECT n, CASE WHEN n > 0 THEN pg_notify($2, $3) END, ${LISTENERS('$4')}
               FROM (SELECT count(*)::int AS n FROM gone) AS c`,
            values: [now, this.channel, `${nonce} x ${now}`, this.listenerName],
          }),
        (outcome) => (outcome.n > 0 ? outcome.listeners : 0),
      );
      if (n === 0) return total;
      total += n;
    }
  }

  /**
   * Runs `work` (a sweep: `deleteExpired`, `deleteExpiredAttempts`, `deleteExpiredRemember`) only
   * when no other process is sweeping this schema, and gives its result; gives null without
   * running it when another holds the lock. The lock is a session-level `pg_try_advisory_lock` on
   * one pooled connection, never waited for; `work`'s own batches run on other connections, so the
   * lock blocks no session, user or throttle statement.
   */
  async sweepExclusive<T>(work: () => Promise<T>): Promise<T | null> {
    if (!this.migrated) await this.migrations();
    const key = `latchkey sweep ${this.schema}`;
    const client = await this.pool.connect();
    client.on('error', this.ignoreError);
    let broken: Error | undefined;
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [key],
      );
      if (rows[0]?.locked !== true) return null;
      try {
        return await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      }
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      client.off('error', this.ignoreError);
      // A connection that failed may still hold the lock: destroy it (which drops the lock).
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    this.cache?.reset(false);
    this.releaseWaiters();
    const listener = this.listener;
    this.listener = null;
    if (listener) await listener.end().catch(() => {});
    if (this.ownsPool) await this.pool.end();
    else this.pool.off('error', this.ignoreError);
  }

  async createUser(user: UserRecord): Promise<boolean> {
    const { rowCount } = await this.query({
      name: `${this.names}user-insert`,
      text: `INSERT INTO ${this.t.users} (id, username, username_key, password_hash, created_at, disabled)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      values: [
        user.id,
        user.username,
        user.usernameKey,
        user.passwordHash,
        user.createdAt,
        user.disabled,
      ],
    });
    return rowCount === 1;
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    const { rows } = await this.query<UserRow>({
      name: `${this.names}user-by-id`,
      text: `SELECT * FROM ${this.t.users} WHERE id = $1`,
      values: [id],
    });
    return rows[0] ? userFromRow(rows[0]) : null;
  }

  async findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    const { rows } = await this.query<UserRow>({
      name: `${this.names}user-by-key`,
      text: `SELECT * FROM ${this.t.users} WHERE username_key = $1`,
      values: [usernameKey],
    });
    return rows[0] ? userFromRow(rows[0]) : null;
  }

  async listUsers(): Promise<UserRecord[]> {
    const { rows } = await this.query<UserRow>(
      `SELECT * FROM ${this.t.users} ORDER BY created_at, id`,
    );
    return rows.map(userFromRow);
  }

  async updateUser(
    id: string,
    changes: { passwordHash?: string; disabled?: boolean },
  ): Promise<boolean> {
    const { rowCount } = await this.query({
      name: `${this.names}user-update`,
      text: `UPDATE ${this.t.users} SET password_hash = coalesce($2, password_hash),
               disabled = coalesce($3, disabled) WHERE id = $1`,
      values: [id, changes.passwordHash ?? null, changes.disabled ?? null],
    });
    return rowCount === 1;
  }

  async deleteUser(id: string): Promise<boolean> {
    const { rowCount } = await this.query({
      name: `${this.names}user-delete`,
      text: `DELETE FROM ${this.t.users} WHERE id = $1`,
      values: [id],
    });
    return rowCount === 1;
  }

  async consumeAttempt(key: string, now: number, rule: ThrottleRule): Promise<ThrottleDecision> {
    return this.transaction(async (client) => {
      // The row may not exist yet, so a row lock cannot serialise the first attempts: a key lock can.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `${this.names}attempt ${key}`,
      ]);
      const { rows } = await client.query<{
        count: number;
        window_end: string;
        next_allowed_at: string;
      }>({
        name: `${this.names}attempt`,
        text: `SELECT count, window_end, next_allowed_at FROM ${this.t.attempts} WHERE key = $1`,
        values: [key],
      });
      const row = rows[0];
      const current: AttemptWindow | null = row
        ? {
            count: row.count,
            windowEnd: Number(row.window_end),
            nextAllowedAt: Number(row.next_allowed_at),
          }
        : null;
      const { decision, save } = consumeFrom(current, now, rule);
      if (save) {
        await client.query({
          name: `${this.names}attempt-save`,
          text: `INSERT INTO ${this.t.attempts} (key, count, window_end, next_allowed_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO UPDATE SET count = excluded.count,
                   window_end = excluded.window_end, next_allowed_at = excluded.next_allowed_at`,
          values: [key, save.count, save.windowEnd, Math.ceil(save.nextAllowedAt)],
        });
      }
      return decision;
    });
  }

  async resetAttempts(key: string): Promise<void> {
    await this.query({
      name: `${this.names}attempt-reset`,
      text: `DELETE FROM ${this.t.attempts} WHERE key = $1`,
      values: [key],
    });
  }

  async deleteExpiredAttempts(now: number): Promise<number> {
    return this.sweep('attempts', this.t.attempts, 'key', 'window_end', now);
  }

  async createRemember(record: RememberRecord): Promise<void> {
    await this.query({
      name: `${this.names}remember-insert`,
      text: `INSERT INTO ${this.t.remember} (selector, validator_hash, user_id, created_at,
               expires_at, replaced_by, replaced_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      values: rememberValues(record),
    });
  }

  async findRemember(selector: string): Promise<RememberRecord | null> {
    const { rows } = await this.query<RememberRow>({
      name: `${this.names}remember`,
      text: `SELECT * FROM ${this.t.remember} WHERE selector = $1`,
      values: [selector],
    });
    const row = rows[0];
    return row
      ? {
          selector: row.selector,
          validatorHash: row.validator_hash,
          userId: row.user_id,
          createdAt: Number(row.created_at),
          expiresAt: Number(row.expires_at),
          replacedBy: row.replaced_by,
          replacedAt: row.replaced_at === null ? null : Number(row.replaced_at),
        }
      : null;
  }

  /**
   * One statement: the UPDATE locks the old token's row and re-checks `replaced_by IS NULL` after
   * any concurrent rotation commits, and the successor is inserted only if that UPDATE matched.
   */
  async rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    const { rowCount } = await this.query({
      name: `${this.names}remember-rotate`,
      text: `WITH replaced AS (UPDATE ${this.t.remember} SET replaced_by = $1, replaced_at = $8
               WHERE selector = $9 AND replaced_by IS NULL RETURNING 1)
             INSERT INTO ${this.t.remember} (selector, validator_hash, user_id, created_at,
               expires_at, replaced_by, replaced_at)
             SELECT $1, $2, $3, $4, $5, $6, $7 FROM replaced`,
      values: [...rememberValues(successor), now, selector],
    });
    return rowCount === 1;
  }

  async deleteRemember(selector: string): Promise<boolean> {
    const { rowCount } = await this.query({
      name: `${this.names}remember-delete`,
      text: `DELETE FROM ${this.t.remember} WHERE selector = $1`,
      values: [selector],
    });
    return rowCount === 1;
  }

  async deleteRememberByUser(userId: string): Promise<number> {
    const { rowCount } = await this.query({
      name: `${this.names}remember-delete-user`,
      text: `DELETE FROM ${this.t.remember} WHERE user_id = $1`,
      values: [userId],
    });
    return rowCount ?? 0;
  }

  async deleteExpiredRemember(now: number): Promise<number> {
    return this.sweep('remember', this.t.remember, 'selector', 'expires_at', now);
  }

  private insertSession(record: SessionRecord): pg.QueryConfig {
    return {
      name: `${this.names}insert`,
      text: `INSERT INTO ${this.t.sessions} (id, user_id, created_at, last_seen_at, idle_expires_at,
               absolute_expires_at, authenticated_at, ip, user_agent, "user", data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      values: [
        record.id,
        record.userId,
        record.createdAt,
        record.lastSeenAt,
        record.idleExpiresAt,
        record.absoluteExpiresAt,
        record.authenticatedAt,
        record.ip,
        record.userAgent,
        JSON.stringify(record.user),
        JSON.stringify(record.data),
      ],
    };
  }

  /** Runs a one-session write that notifies; gives how many rows it changed (0 or 1). */
  private async notifying(id: string, build: (nonce: string) => pg.QueryConfig): Promise<number> {
    this.cache?.invalidate(id);
    const { changed } = await this.acknowledged(
      async (nonce) => {
        const result = await this.query(build(nonce));
        return { changed: result.rowCount ?? 0, listeners: notifiedBy(result) };
      },
      (outcome) => outcome.listeners,
    );
    return changed;
  }

  /** Runs a statement that answers one row `{ n, listeners }`. */
  private async counted(config: pg.QueryConfig): Promise<{ n: number; listeners: number }> {
    const { rows } = await this.query<{ n: number; listeners: number }>(config);
    return { n: rows[0]?.n ?? 0, listeners: rows[0]?.listeners ?? 0 };
  }

  /** Batch-deletes rows of `table` whose `column <= now`; gives how many. */
  private async sweep(
    label: string,
    table: string,
    key: string,
    column: string,
    now: number,
  ): Promise<number> {
    let total = 0;
    for (;;) {
      const { rowCount } = await this.query({
        name: `${this.names}sweep-${label}`,
        text: `DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table}
                 WHERE ${column} <= $1 LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)
               AND ${column} <= $1`,
        values: [now],
      });
      total += rowCount ?? 0;
      if (!rowCount) return total;
    }
  }

  private async query<R extends QueryResultRow = QueryResultRow>(
    config: pg.QueryConfig | string,
  ): Promise<pg.QueryResult<R>> {
    if (!this.migrated) await this.migrations();
    return this.pool.query<R>(config);
  }

  /**
   * Runs `work` in a transaction on one pooled client. A client whose connection failed is
   * destroyed rather than returned to the pool.
   */
  private async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    if (!this.migrated) await this.migrations();
    const client = await this.pool.connect();
    // Checked out, a client killed between two statements emits 'error' with nobody listening.
    client.on('error', this.ignoreError);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollback: unknown) => {
        broken = rollback instanceof Error ? rollback : new Error(String(rollback));
      });
      throw error;
    } finally {
      client.off('error', this.ignoreError);
      client.release(broken);
    }
  }

  /**
   * Runs a write that sends NOTIFY tagged with a fresh nonce and resolves only once every cache
   * listening when it committed has dropped its copies and said so: our own LISTEN connection
   * hears the NOTIFY, every other one answers on our acknowledgement channel. `listeners(result)`
   * is how many were listening (0: nothing was sent). So a request that follows the write, in
   * any process, never finds the old record in a cache. A writer without an active cache does
   * not wait: its nonce "-" asks for no acknowledgements.
   */
  private async acknowledged<T>(
    write: (nonce: string) => Promise<T>,
    listeners: (result: T) => number,
  ): Promise<T> {
    if (!this.cache?.active) return write('-');
    this.sequence = (this.sequence + 1) % Number.MAX_SAFE_INTEGER;
    const nonce = `${this.instance}.${this.sequence}`;
    let timer: NodeJS.Timeout | undefined;
    const waiter: Waiter = { heard: 0, expected: Number.POSITIVE_INFINITY, done: () => {} };
    // Registered before the write: answers may be read before the write's own reply.
    const all = new Promise<void>((resolve) => {
      waiter.done = () => {
        clearTimeout(timer);
        this.waiters.delete(nonce);
        resolve();
      };
    });
    this.waiters.set(nonce, waiter);
    try {
      const result = await write(nonce);
      waiter.expected = listeners(result);
      if (waiter.heard < waiter.expected) {
        // A cache that never answers (a hung process) delays this write, never blocks it.
        timer = setTimeout(waiter.done, ACK_TIMEOUT_MS);
        await all;
      }
      return result;
    } finally {
      waiter.done();
    }
  }

  private heard(nonce: string): void {
    const waiter = this.waiters.get(nonce);
    if (!waiter) return;
    waiter.heard++;
    if (waiter.heard >= waiter.expected) waiter.done();
  }

  private releaseWaiters(): void {
    for (const waiter of [...this.waiters.values()]) waiter.done();
  }

  /** Opens the LISTEN connection; on any failure, turns the cache off and tries again later. */
  private listen(): void {
    if (this.closed) return;
    const cache = this.cache;
    if (!cache) return;
    // The pool hides its password from enumeration, so it is copied by name.
    const client = new pg.Client({
      ...this.pool.options,
      password: this.pool.options.password,
      keepAlive: true,
      query_timeout: LISTENER_HEARTBEAT_MS,
    });
    this.listener = client;
    let down = false;
    const lost = (): void => {
      if (down) return;
      down = true;
      clearInterval(this.heartbeat);
      cache.reset(false);
      this.releaseWaiters();
      if (this.listener === client) this.listener = null;
      client.end().catch(() => {});
      if (this.closed) return;
      const delay = Math.min(50 * 2 ** this.listenerRetries++, 2000);
      this.reconnectTimer = setTimeout(() => this.listen(), delay);
      this.reconnectTimer.unref();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (message) => this.onNotification(client, message));
    client
      .connect()
      .then(() =>
        // The keepalive settings let the server drop us soon if this process dies silently, so
        // writers stop counting (and waiting for) a cache that is gone.
        client.query(`LISTEN "${this.channel}"; LISTEN "${this.ackChannel}";
          SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;
          SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000;
          SET application_name = '${this.listenerName}'`),
      )
      .then(() => {
        if (down || this.closed) return;
        this.listenerRetries = 0;
        // Only now is every later invalidation sure to reach us: start from empty.
        cache.reset(true);
        this.heartbeat = setInterval(() => {
          // A silently dead connection (no RST) would otherwise leave the cache on forever.
          client.query('SELECT 1').catch(lost);
        }, LISTENER_HEARTBEAT_MS);
        this.heartbeat.unref();
      })
      .catch(lost);
  }

  private onNotification(client: pg.Client, message: Notification): void {
    const payload = message.payload ?? '';
    if (message.channel === this.ackChannel) {
      this.heard(payload);
      return;
    }
    const [nonce, kind] = payload.split(' ', 2);
    if (nonce === undefined || kind === undefined) return;
    const argument = payload.slice(nonce.length + kind.length + 2);
    const cache = this.cache;
    if (kind === 'd') cache?.invalidate(argument);
    else if (kind === 'u') cache?.invalidateUser(argument);
    else if (kind === 'x') cache?.invalidateDeadAt(Number(argument));
    const writer = nonce.slice(0, Math.max(0, nonce.indexOf('.')));
    if (writer === this.instance) this.heard(nonce);
    else if (writer !== '') {
      // Dropped above, synchronously: only now may the writer's caller go on.
      client.query('SELECT pg_notify($1, $2)', [`latchkey.ack.${writer}`, nonce]).catch(() => {});
    }
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

function rememberValues(record: RememberRecord): (string | number | null)[] {
  return [
    record.selector,
    record.validatorHash,
    record.userId,
    record.createdAt,
    record.expiresAt,
    record.replacedBy,
    record.replacedAt,
  ];
}

function userFromRow(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    usernameKey: row.username_key,
    passwordHash: row.password_hash,
    createdAt: Number(row.created_at),
    disabled: row.disabled,
  };
}

function fromRow(row: Row): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    createdAt: Number(row.created_at),
    lastSeenAt: Number(row.last_seen_at),
    idleExpiresAt: Number(row.idle_expires_at),
    absoluteExpiresAt: Number(row.absolute_expires_at),
    authenticatedAt: Number(row.authenticated_at),
    ip: row.ip,
    userAgent: row.user_agent,
    user: JSON.parse(row.user),
    data: JSON.parse(row.data),
  };
}
