// How records sit in Redis hashes, decoded and encoded, and when their keys expire.

import type {
  JsonObject,
  JsonValue,
  RememberRecord,
  SessionRecord,
  UserRecord,
} from '../../core/store.js';

/**
 * Records dead by this process's clock stay this long, so a caller whose clock differs (skew, an
 * injected test clock) still sees what the contract promises; live records expire exactly on time.
 */
export const LINGER_MS = 60_000;

/** The PEXPIREAT of a key whose record dies at `deadline`. */
export const expireAtFor = (deadline: number): string =>
  String(Math.trunc(Math.max(deadline, Date.now() + LINGER_MS)));

type Fields = Record<string, string>;

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A flat [field, value, …] array (HGETALL inside Lua) as an object. */
export function pairs(reply: unknown): Fields {
  const fields: Fields = {};
  if (!Array.isArray(reply)) return fields;
  for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1]);
  return fields;
}

/** Prefix of the hash fields holding `data`, one per top-level key. */
export const DATA_FIELD = 'd:';

/**
 * The `record` field: the record with `data` left empty, and last, for two reasons: a process of
 * an earlier version reads `{}` rather than nothing, and SESSION_UPDATE_DATA tells such a record
 * from one written by an earlier version (data inside) by its ending.
 */
export function recordJson(record: Omit<SessionRecord, 'data'>): string {
  const { data: _data, ...rest } = record as SessionRecord;
  return JSON.stringify({ ...rest, data: {} });
}

/** `data` as hash fields: `d:<key>`, JSON of the value, … */
export function dataFields(data: JsonObject): string[] {
  const fields: string[] = [];
  for (const [key, value] of Object.entries(data))
    fields.push(`${DATA_FIELD}${key}`, JSON.stringify(value));
  return fields;
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isTextOrNull = (value: unknown): boolean => value === null || typeof value === 'string';

/** Whether a parsed `record` field has every field of a session (lastSeenAt/idleExpiresAt aside). */
function isSessionJson(record: unknown): record is SessionRecord {
  if (!isObject(record)) return false;
  return (
    typeof record.id === 'string' &&
    typeof record.userId === 'string' &&
    typeof record.createdAt === 'number' &&
    typeof record.absoluteExpiresAt === 'number' &&
    typeof record.authenticatedAt === 'number' &&
    isTextOrNull(record.ip) &&
    isTextOrNull(record.userAgent) &&
    isObject(record.user) &&
    (record.data === undefined || isObject(record.data))
  );
}

/**
 * A stored session, or null when absent or undecodable: a corrupt, partial or foreign hash is
 * "no session", never an error and never a partial record.
 */
export function sessionFrom(reply: unknown): SessionRecord | null {
  if (!isFields(reply) || typeof reply.record !== 'string') return null;
  // Checked before Number(), which reads an absent or empty field as NaN or 0 (the epoch).
  if (!reply.lastSeenAt || !reply.idleExpiresAt) return null;
  const lastSeenAt = Number(reply.lastSeenAt);
  const idleExpiresAt = Number(reply.idleExpiresAt);
  if (!Number.isFinite(lastSeenAt) || !Number.isFinite(idleExpiresAt)) return null;
  try {
    const record: unknown = JSON.parse(reply.record);
    if (!isSessionJson(record)) return null;
    // Freshly parsed, so ours to fill; a record written by an earlier version has its data here.
    const data: JsonObject = record.data ?? {};
    for (const name in reply) {
      if (!name.startsWith(DATA_FIELD)) continue;
      const key = name.slice(DATA_FIELD.length);
      const value = JSON.parse(reply[name] as string) as JsonValue;
      if (key === '__proto__') {
        Object.defineProperty(data, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        data[key] = value;
      }
    }
    return { ...record, lastSeenAt, idleExpiresAt, data };
  } catch {
    return null;
  }
}

export function userFrom(fields: unknown): UserRecord | null {
  if (!isFields(fields) || fields.id === undefined) return null;
  return {
    id: fields.id,
    username: fields.username ?? '',
    usernameKey: fields.usernameKey ?? '',
    passwordHash: fields.passwordHash ?? '',
    createdAt: Number(fields.createdAt),
    disabled: fields.disabled === '1',
  };
}

/** Hash fields of a token; absent `replacedBy`/`replacedAt` mean "current". */
export function rememberFields(record: RememberRecord): string[] {
  const fields = [
    'selector',
    record.selector,
    'validatorHash',
    record.validatorHash,
    'userId',
    record.userId,
    'createdAt',
    String(record.createdAt),
    'expiresAt',
    String(record.expiresAt),
  ];
  if (record.replacedBy !== null) fields.push('replacedBy', record.replacedBy);
  if (record.replacedAt !== null) fields.push('replacedAt', String(record.replacedAt));
  return fields;
}

export function rememberFrom(fields: unknown): RememberRecord | null {
  if (!isFields(fields) || fields.selector === undefined) return null;
  return {
    selector: fields.selector,
    validatorHash: fields.validatorHash ?? '',
    userId: fields.userId ?? '',
    createdAt: Number(fields.createdAt),
    expiresAt: Number(fields.expiresAt),
    replacedBy: fields.replacedBy ?? null,
    replacedAt: fields.replacedAt === undefined ? null : Number(fields.replacedAt),
  };
}
