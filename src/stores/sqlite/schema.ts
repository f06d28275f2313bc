/** The tables, created if absent when a store opens the file (see {@link ADDED_COLUMNS}). */
export const SCHEMA = `
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
  data TEXT NOT NULL,
  aal INTEGER NOT NULL DEFAULT 1,
  amr TEXT NOT NULL DEFAULT ''
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
CREATE TABLE IF NOT EXISTS latchkey_factors (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  secret TEXT NOT NULL,
  counter INTEGER NOT NULL,
  confirmed INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS latchkey_factors_by_user ON latchkey_factors (user_id, created_at);
`;

/**
 * Columns added after a file may have been created, as `[table, column, definition]`: a file from
 * an earlier version gains them when a store opens it (its rows read the defaults).
 */
export const ADDED_COLUMNS: readonly (readonly [string, string, string])[] = [
  ['latchkey_sessions', 'aal', 'INTEGER NOT NULL DEFAULT 1'],
  ['latchkey_sessions', 'amr', "TEXT NOT NULL DEFAULT ''"],
];
