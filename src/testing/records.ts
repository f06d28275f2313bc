import { randomBytes } from 'node:crypto';
import type { JsonObject, JsonValue, SessionRecord } from '../core/store.js';

export const T0 = Date.UTC(2026, 0, 1);
export const MINUTE = 60_000;

/** A realistic session record (a fresh random id), with `overrides` applied. */
export function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const createdAt = overrides.createdAt ?? T0;
  return {
    id: randomBytes(32).toString('base64url'),
    userId: 'user-1',
    createdAt,
    lastSeenAt: createdAt,
    idleExpiresAt: createdAt + 30 * MINUTE,
    absoluteExpiresAt: createdAt + 720 * MINUTE,
    authenticatedAt: createdAt,
    ip: '127.0.0.1',
    userAgent: 'Mozilla/5.0 (contract test)',
    user: { name: 'Ada', roles: ['admin'], nested: { ok: true, n: 1.5 } },
    data: {},
    ...overrides,
    aal: overrides.aal ?? 1,
    amr: overrides.amr ?? [],
  };
}

/**
 * A record alive now, on the real clock (30 minutes idle, an hour at most): for stores whose
 * backend expires records itself, where a {@link T0} record would already be gone.
 */
export function liveRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return record({
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: now + 30 * MINUTE,
    absoluteExpiresAt: now + 60 * MINUTE,
    authenticatedAt: now,
    ...overrides,
  });
}

/** JSON with object keys sorted: equal strings mean equal values, whatever key order a store keeps. */
export function canonical(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k] as JsonValue)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Builds an object with own properties only (a key named "__proto__" stays data). */
export function object(entries: [string, JsonValue][]): JsonObject {
  return Object.fromEntries(entries);
}
