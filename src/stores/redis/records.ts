// How records sit in Redis hashes, decoded and encoded, and when their keys expire.

import type {
  JsonObject,
  JsonValue,
  RememberRecord,
  SessionRecord,
  UserRecord,
} from '../../core/store.js';
import { aalFrom, amrFrom, amrFromList, amrText } from '../assurance-text.js';

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

/**
 * The longest value a hash field may hold and stay listpack-encoded (Redis' default
 * `hash-max-listpack-value`): a session hash with every value this short costs about half of one
 * with a single longer value, so long strings are written in parts of at most this many bytes.
 */
export const PART_BYTES = 64;

/**
 * The compact record as hash fields, name then value: `u` userId, `c` createdAt, then the other
 * times as offsets from `c` (small integers, which a listpack stores in 2 to 6 bytes instead of 9):
 * `s` lastSeenAt and `w` authenticatedAt (both absent when equal to `c`, as on a fresh session),
 * `e` idleExpiresAt, `x` absoluteExpiresAt; `v` aal and `m` amr (space-separated; absent: 1 and
 * none), `p` ip and `g` user agent (absent: null), `o` or `n` the user snapshot's JSON (see
 * {@link pushUser}), then the `d:<key>` data fields. `g`, `o` and `n` longer than
 * {@link PART_BYTES} continue in `g1`, `g2`, …
 * The id is the key's, never stored again. Earlier versions wrote absolute `l` `i` `a` `t`
 * instead of the offsets: still read, and touched in that layout.
 */
export function sessionFields(record: SessionRecord): string[] {
  const { createdAt } = record;
  const fields = ['u', record.userId, 'c', String(createdAt)];
  if (record.lastSeenAt !== createdAt) fields.push('s', String(record.lastSeenAt - createdAt));
  fields.push(
    'e',
    String(record.idleExpiresAt - createdAt),
    'x',
    String(record.absoluteExpiresAt - createdAt),
  );
  if (record.authenticatedAt !== createdAt) {
    fields.push('w', String(record.authenticatedAt - createdAt));
  }
  // Level 1 with no methods, the most common record, costs no fields.
  if (record.aal !== 1) fields.push('v', String(record.aal));
  if (record.amr.length > 0) fields.push('m', amrText(record.amr));
  if (record.ip !== null) fields.push('p', record.ip);
  if (record.userAgent !== null) pushParts(fields, 'g', record.userAgent);
  pushUser(fields, record);
  fields.push(...dataFields(record.data));
  return fields;
}

/**
 * The user snapshot: as `o`, without its `id`, when it starts with an `id` equal to the session's
 * user id (the usual `{ id, name }`: the id would be stored twice, and a UUID's 36 bytes take a
 * realistic record past 256 bytes, the next allocation class); else whole as `n`.
 */
function pushUser(fields: string[], record: SessionRecord): void {
  const { user, userId } = record;
  if (user.id === userId && Object.keys(user)[0] === 'id') {
    const { id: _id, ...rest } = user;
    pushParts(fields, 'o', JSON.stringify(rest));
  } else {
    pushParts(fields, 'n', JSON.stringify(user));
  }
}

/** The snapshot {@link pushUser} wrote (`id` first again, as it was), or null when garbled. */
function snapshotFrom(fields: Fields, userId: string): JsonObject | null {
  const rest = joinParts(fields, 'o');
  if (rest !== undefined) {
    const parsed: unknown = JSON.parse(rest);
    return isObject(parsed) ? { id: userId, ...parsed } : null;
  }
  const whole: unknown = JSON.parse(joinParts(fields, 'n') ?? '');
  return isObject(whole) ? whole : null;
}

/** `name`, `name1`, `name2`, … holding `text` in parts of at most PART_BYTES bytes (whole characters). */
function pushParts(fields: string[], name: PartedField, text: string): void {
  if (Buffer.byteLength(text) <= PART_BYTES) {
    fields.push(name, text);
    return;
  }
  let part = '';
  let bytes = 0;
  let index = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > PART_BYTES) {
      fields.push(index === 0 ? name : `${name}${index}`, part);
      index++;
      part = '';
      bytes = 0;
    }
    part += char;
    bytes += size;
  }
  fields.push(index === 0 ? name : `${name}${index}`, part);
}

/** The fields written in parts by {@link pushParts}. */
type PartedField = 'g' | 'o' | 'n';

/** `name0` to `name15`: 1 KiB in parts, the names made once rather than on every read. */
const partNames = (name: PartedField): readonly string[] =>
  Array.from({ length: 16 }, (_, index) => `${name}${index}`);

const PART_NAMES: Record<PartedField, readonly string[]> = {
  g: partNames('g'),
  o: partNames('o'),
  n: partNames('n'),
};

/** The text written by pushParts, or undefined when `name` is absent. */
function joinParts(fields: Fields, name: PartedField): string | undefined {
  let text = fields[name];
  if (text === undefined) return undefined;
  const names = PART_NAMES[name];
  for (let index = 1; ; index++) {
    const part = fields[names[index] ?? `${name}${index}`];
    if (part === undefined) return text;
    text += part;
  }
}

/** Prefix of the hash fields holding `data`, one per top-level key. */
export const DATA_FIELD = 'd:';

/**
 * The `record` field of the layout before the compact one, with `data` left empty and last: used
 * only to move the data of an even earlier record (data inside `record`) into fields of its own.
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
 * "no session", never an error and never a partial record. A compact record does not hold its
 * id (its key does): it comes back with `id` "" for the caller to fill in.
 */
export function sessionFrom(reply: unknown): SessionRecord | null {
  if (!isFields(reply)) return null;
  if (reply.record === undefined) return compactSessionFrom(reply);
  return earlierSessionFrom(reply);
}

/** An integer field as a number, or NaN when absent, empty or not a number. */
const integer = (text: string | undefined): number => (text ? Number(text) : Number.NaN);

/** createdAt plus an offset field; absent offsets (`s`, `w`) mean 0. */
const offset = (createdAt: number, text: string | undefined, optional: boolean): number =>
  text === undefined && optional ? createdAt : createdAt + integer(text);

function compactSessionFrom(fields: Fields): SessionRecord | null {
  const userId = fields.u;
  if (userId === undefined) return null;
  // The live and fixed times: offsets from `c`, or (earlier versions) absolute. No intermediate
  // object: this runs on every validated request.
  const createdAt = integer(fields.c);
  const offsets = fields.e !== undefined;
  const lastSeenAt = offsets ? offset(createdAt, fields.s, true) : integer(fields.l);
  const idleExpiresAt = offsets ? offset(createdAt, fields.e, false) : integer(fields.i);
  const absoluteExpiresAt = offsets ? offset(createdAt, fields.x, false) : integer(fields.a);
  const authenticatedAt = offsets ? offset(createdAt, fields.w, true) : integer(fields.t);
  if (
    !Number.isFinite(createdAt) ||
    !Number.isFinite(lastSeenAt) ||
    !Number.isFinite(idleExpiresAt) ||
    !Number.isFinite(absoluteExpiresAt) ||
    !Number.isFinite(authenticatedAt)
  ) {
    return null;
  }
  const aal = aalFrom(fields.v);
  const amr = amrFrom(fields.m);
  if (aal === null || amr === null) return null;
  try {
    const user = snapshotFrom(fields, userId);
    if (user === null) return null;
    return {
      id: '',
      userId,
      createdAt,
      lastSeenAt,
      idleExpiresAt,
      absoluteExpiresAt,
      authenticatedAt,
      aal,
      amr,
      ip: fields.p ?? null,
      userAgent: joinParts(fields, 'g') ?? null,
      user,
      data: dataFrom(fields, {}),
    };
  } catch {
    return null;
  }
}

/** A record in the layout of earlier versions: one `record` JSON field beside the live times. */
function earlierSessionFrom(reply: Fields): SessionRecord | null {
  if (typeof reply.record !== 'string') return null;
  // Checked before Number(), which reads an absent or empty field as NaN or 0 (the epoch).
  if (!reply.lastSeenAt || !reply.idleExpiresAt) return null;
  const lastSeenAt = Number(reply.lastSeenAt);
  const idleExpiresAt = Number(reply.idleExpiresAt);
  if (!Number.isFinite(lastSeenAt) || !Number.isFinite(idleExpiresAt)) return null;
  try {
    const record: unknown = JSON.parse(reply.record);
    if (!isSessionJson(record)) return null;
    // Freshly parsed, so ours to fill; a record written before data had fields has its data here.
    const data = dataFrom(reply, record.data ?? {});
    // Written before levels (no aal/amr), or since, by an update of this layout (recordJson).
    const aal = aalFrom(record.aal);
    const amr = amrFromList(record.amr);
    if (aal === null || amr === null) return null;
    return { ...record, lastSeenAt, idleExpiresAt, aal, amr, data };
  } catch {
    return null;
  }
}

/** `data` with the `d:<key>` fields added (a value that is not JSON throws). */
function dataFrom(fields: Fields, data: JsonObject): JsonObject {
  for (const name in fields) {
    if (!name.startsWith(DATA_FIELD)) continue;
    const key = name.slice(DATA_FIELD.length);
    const value = JSON.parse(fields[name] as string) as JsonValue;
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
  return data;
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
