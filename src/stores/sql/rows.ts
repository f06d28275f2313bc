// Records to rows and back, for the SQL stores (SQLite and PostgreSQL). Both keep the same
// columns: times as integer epoch milliseconds, JSON as text, a user's flag as 0/1 on the way in
// (PostgreSQL's BOOLEAN reads '0'/'1' as false/true). PostgreSQL gives its BIGINTs back as numbers
// (its folder sets the type parser), so a row reads the same from either engine. `aal` and `amr`
// come last (columns added after the others): the level as 1/2, the methods as space-separated text.

import type {
  FactorKind,
  FactorRecord,
  JsonObject,
  RememberRecord,
  SessionRecord,
  UserRecord,
} from '../../core/store.js';
import { aalFrom, amrFrom, amrText } from '../assurance-text.js';
import type { AttemptWindow } from '../throttle-window.js';

/** The session columns, in {@link SessionRow} order. `"user"` is quoted: PostgreSQL reserves it. */
export const SESSION_COLUMNS =
  'id, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, authenticated_at, ip, user_agent, "user", data, aal, amr';

/** A session row as the driver gives it, in {@link SESSION_COLUMNS} order: not yet trusted. */
export type SessionRow = readonly unknown[];

/** Positions in a {@link SessionRow} that the stores read without decoding the whole row. */
export const SESSION_ID = 0;
export const SESSION_USER_ID = 1;
export const SESSION_IDLE_EXPIRES_AT = 4;

/** The values of {@link SESSION_COLUMNS} for an insert, in order. */
export function sessionValues(record: SessionRecord): (string | number | null)[] {
  return [
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
    record.aal,
    amrText(record.amr),
  ];
}

/**
 * The record a row holds, or null when it cannot be one (a column of the wrong type, `user` or
 * `data` not a JSON object): an undecodable row is no session. Type checks only, then the two
 * parses the record needs anyway: this is the validation path.
 */
export function sessionFromRow(row: SessionRow): SessionRecord | null {
  const id = row[0];
  const userId = row[1];
  const createdAt = row[2];
  const lastSeenAt = row[3];
  const idleExpiresAt = row[4];
  const absoluteExpiresAt = row[5];
  const authenticatedAt = row[6];
  const ip = row[7];
  const userAgent = row[8];
  if (
    typeof id !== 'string' ||
    typeof userId !== 'string' ||
    typeof createdAt !== 'number' ||
    typeof lastSeenAt !== 'number' ||
    typeof idleExpiresAt !== 'number' ||
    typeof absoluteExpiresAt !== 'number' ||
    typeof authenticatedAt !== 'number' ||
    (ip !== null && typeof ip !== 'string') ||
    (userAgent !== null && typeof userAgent !== 'string')
  ) {
    return null;
  }
  const user = parseObject(row[9]);
  const data = parseObject(row[10]);
  const aal = aalFrom(row[11]);
  const amr = typeof row[12] === 'string' ? amrFrom(row[12]) : null;
  if (user === null || data === null || aal === null || amr === null) return null;
  // One object literal, so every record has the same shape.
  return {
    id,
    userId,
    createdAt,
    lastSeenAt,
    idleExpiresAt,
    absoluteExpiresAt,
    authenticatedAt,
    aal,
    amr,
    ip,
    userAgent,
    user,
    data,
  };
}

/** The records of `rows`, oldest first as given; undecodable rows are left out (no session). */
export function sessionsFromRows(rows: readonly SessionRow[]): SessionRecord[] {
  const records: SessionRecord[] = [];
  for (const row of rows) {
    const record = sessionFromRow(row);
    if (record) records.push(record);
  }
  return records;
}

/** The object `json` holds, or null when it is not the text of a JSON object. */
function parseObject(json: unknown): JsonObject | null {
  if (typeof json !== 'string') return null;
  // Most `data` (and many snapshots) are empty: no parser call for those.
  if (json === '{}') return {};
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as JsonObject)
    : null;
}

/** The user columns, in {@link userValues} order. */
export const USER_COLUMNS = 'id, username, username_key, password_hash, created_at, disabled';

/** A user row as selected by {@link USER_COLUMNS}. */
export interface UserRow {
  readonly id: string;
  readonly username: string;
  readonly username_key: string;
  readonly password_hash: string;
  readonly created_at: number;
  /** SQLite's 0/1 or PostgreSQL's BOOLEAN. */
  readonly disabled: number | boolean;
}

export function userValues(user: UserRecord): (string | number)[] {
  return [
    user.id,
    user.username,
    user.usernameKey,
    user.passwordHash,
    user.createdAt,
    flag(user.disabled),
  ];
}

/** A boolean column's value on the way in: 0/1, which both engines store as false/true. */
export function flag(value: boolean): 0 | 1 {
  return value ? 1 : 0;
}

export function userFromRow(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    usernameKey: row.username_key,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    disabled: row.disabled === true || row.disabled === 1,
  };
}

/** The remember-me columns, in {@link rememberValues} order. */
export const REMEMBER_COLUMNS =
  'selector, validator_hash, user_id, created_at, expires_at, replaced_by, replaced_at';

/** A remember-me row as selected by {@link REMEMBER_COLUMNS}. */
export interface RememberRow {
  readonly selector: string;
  readonly validator_hash: string;
  readonly user_id: string;
  readonly created_at: number;
  readonly expires_at: number;
  readonly replaced_by: string | null;
  readonly replaced_at: number | null;
}

export function rememberValues(record: RememberRecord): (string | number | null)[] {
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

export function rememberFromRow(row: RememberRow): RememberRecord {
  return {
    selector: row.selector,
    validatorHash: row.validator_hash,
    userId: row.user_id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    replacedBy: row.replaced_by,
    replacedAt: row.replaced_at,
  };
}

/** An attempt window's columns, named as {@link AttemptWindow}'s fields (quoted: case kept). */
export const ATTEMPT_WINDOW_COLUMNS =
  'count, window_end AS "windowEnd", next_allowed_at AS "nextAllowedAt"';

/** The values of `(key, count, window_end, next_allowed_at)` for saving `window`. */
export function attemptValues(key: string, window: AttemptWindow): (string | number)[] {
  return [key, window.count, window.windowEnd, window.nextAllowedAt];
}

/** The second-factor columns, in {@link factorValues} order. */
export const FACTOR_COLUMNS =
  'id, user_id, kind, name, secret, counter, confirmed, created_at, last_used_at';

/** A second-factor row as selected by {@link FACTOR_COLUMNS}. */
export interface FactorRow {
  readonly id: string;
  readonly user_id: string;
  readonly kind: FactorKind;
  readonly name: string;
  readonly secret: string;
  readonly counter: number;
  /** SQLite's 0/1 or PostgreSQL's BOOLEAN. */
  readonly confirmed: number | boolean;
  readonly created_at: number;
  readonly last_used_at: number | null;
}

export function factorValues(factor: FactorRecord): (string | number | null)[] {
  return [
    factor.id,
    factor.userId,
    factor.kind,
    factor.name,
    factor.secret,
    factor.counter,
    flag(factor.confirmed),
    factor.createdAt,
    factor.lastUsedAt,
  ];
}

export function factorFromRow(row: FactorRow): FactorRecord {
  return {
    id: row.id,
    userId: row.user_id,
    kind: row.kind,
    name: row.name,
    secret: row.secret,
    counter: row.counter,
    confirmed: row.confirmed === true || row.confirmed === 1,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}
