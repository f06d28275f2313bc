import type { MigrationReport } from '../../core/capabilities.js';
import { ConfigError } from '../../core/errors.js';
import type { PostgresPool } from './index.js';
import { checkPool } from './pool.js';

export const DEFAULT_SCHEMA = 'latchkey';

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
  {
    version: 2,
    name: 'session assurance level and methods, second factors',
    // Rows from before levels read as level 1 with no methods, as the core expects.
    sql: (s) => `
ALTER TABLE ${s}.latchkey_sessions
  ADD COLUMN aal SMALLINT NOT NULL DEFAULT 1,
  ADD COLUMN amr TEXT NOT NULL DEFAULT '';
CREATE TABLE ${s}.latchkey_factors (
  id TEXT COLLATE "C" PRIMARY KEY,
  user_id TEXT COLLATE "C" NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  secret TEXT NOT NULL,
  counter BIGINT NOT NULL,
  confirmed BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT
);
CREATE INDEX latchkey_factors_by_user ON ${s}.latchkey_factors (user_id, created_at, id);`,
  },
];

/** `schema` when it is a plain identifier, else a ConfigError. */
export function checkSchema(schema: unknown): string {
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
export function migrate(
  pool: PostgresPool,
  options: { schema?: string } = {},
): Promise<MigrationReport> {
  return migrateUpTo(pool, options, Number.POSITIVE_INFINITY);
}

/**
 * {@link migrate}, applying no version above `last`: how tests build a schema as an earlier
 * release left it, to check what the later migrations make of its rows.
 */
export async function migrateUpTo(
  pool: PostgresPool,
  options: { schema?: string },
  last: number,
): Promise<MigrationReport> {
  const schema = checkSchema(options.schema ?? DEFAULT_SCHEMA);
  const s = `"${schema}"`;
  const client = await checkPool(pool).connect();
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
        if (known.has(migration.version) || migration.version > last) continue;
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
