// How records sit in memcached items: JSON, decoded with every field checked.

import { createHash } from 'node:crypto';
import type { JsonObject, SessionRecord } from '../../core/store.js';
import { aalFrom, amrFromList } from '../assurance-text.js';

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isTextOrNull = (value: unknown): boolean => value === null || typeof value === 'string';
const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);

/** A key part for any string (user ids, throttle keys): memcached keys allow no spaces or controls. */
export function hashed(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

export function encodeSession(record: SessionRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

/**
 * The session stored under `id`, or null when the bytes are not one (corrupt, partial, foreign,
 * or a record of another id): "no session", never an error and never a partial record.
 */
export function decodeSession(bytes: Buffer | null, id: string): SessionRecord | null {
  if (!bytes) return null;
  let record: unknown;
  try {
    record = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (!isObject(record)) return null;
  const ok =
    record.id === id &&
    typeof record.userId === 'string' &&
    isTime(record.createdAt) &&
    isTime(record.lastSeenAt) &&
    isTime(record.idleExpiresAt) &&
    isTime(record.absoluteExpiresAt) &&
    isTime(record.authenticatedAt) &&
    isTextOrNull(record.ip) &&
    isTextOrNull(record.userAgent) &&
    isObject(record.user) &&
    isObject(record.data);
  if (!ok) return null;
  // A record written before levels has neither field: level 1, no methods.
  const aal = aalFrom(record.aal);
  const amr = amrFromList(record.amr);
  if (aal === null || amr === null) return null;
  return { ...(record as unknown as SessionRecord), aal, amr };
}

/** Parses a JSON object, or null (bad bytes, another shape). */
export function decodeObject(bytes: Buffer | null): Record<string, unknown> | null {
  if (!bytes) return null;
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
}
