import { BasicPooledClientSideCache } from 'redis';
import { ConfigError } from '../../core/errors.js';
import type { JsonObject, SessionRecord } from '../../core/store.js';
import { sessionFrom } from './records.js';

/** What {@link ValidationCache} keeps beside a node-redis entry: that entry's session, decoded. */
interface DecodedSession {
  /** The node-redis cache entry it was decoded from: served only while that entry is current. */
  readonly entry: object;
  /** Null for a key without a record; otherwise the record, `user` and `data` left empty… */
  readonly record: SessionRecord | null;
  /** …and those two as `JSON.stringify([user, data])`, parsed afresh for each caller (or null: both empty). */
  readonly nested: string | null;
}

function isEmptyObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const _ in value) return false;
  return Object.getOwnPropertyNames(value).length === 0;
}

/** node-redis' cache key for `HGETALL <key>` (its `generateCacheKey`: argument lengths, then arguments). */
const hGetAllCacheKey = (key: string): string => `7_${key.length}_HGETALL_${key}`;

/**
 * The validation cache: node-redis' pooled client-side cache (LRU, bounded), except that losing a
 * connection empties it AND turns it off until the connection is back, because invalidations sent
 * while we were away are lost: until then every read goes to Redis.
 *
 * Beside node-redis' entries for session reads it keeps their records decoded, so a hit costs no
 * command round through node-redis and no decoding. A decoded record is made only from the entry
 * node-redis itself accepted (never from a reply that an invalidation overtook), is served only
 * while that very entry is still node-redis' current one, and goes whenever that entry goes
 * (invalidation, eviction, replacement, clear, enable/disable): never more than `maxEntries`.
 */
export class ValidationCache extends BasicPooledClientSideCache {
  constructor(options: { maxEntries?: number } = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new ConfigError('cache.maxEntries: must be a whole number >= 1');
    }
    super({ maxEntries, evictPolicy: 'LRU', recordStats: true });
  }

  /** False while a connection is down (every read then goes to Redis). */
  get active(): boolean {
    return this.isActive;
  }

  private isActive = true;
  /** Session key (`HGETALL` key) → the session decoded from node-redis' entry for it. */
  private readonly decodedSessions = new Map<string, DecodedSession>();

  /**
   * The session stored at `key` if node-redis holds a current entry for `HGETALL key` that was
   * decoded already: a fresh copy (the caller may change it), null for "no such session", or
   * undefined when the read must go through node-redis.
   */
  decodedSession(key: string): SessionRecord | null | undefined {
    const decoded = this.decodedSessions.get(key);
    if (decoded === undefined) return undefined;
    // Also keeps node-redis' LRU order, and gives undefined while the cache is off.
    const cacheKey = hGetAllCacheKey(key);
    if (this.get(cacheKey) !== decoded.entry) {
      this.decodedSessions.delete(key);
      return undefined;
    }
    this.recordHits(1);
    const record = decoded.record;
    if (record === null) return null;
    if (decoded.nested === null) return { ...record, user: {}, data: {} };
    const [user, data] = JSON.parse(decoded.nested) as [JsonObject, JsonObject];
    return { ...record, user, data };
  }

  /** After an `HGETALL key` through this cache: decodes what node-redis kept for it, if anything. */
  decodeSession(key: string): void {
    if (!this.isActive) return;
    const entry = this.get(hGetAllCacheKey(key));
    // A promise entry (a read still under way) or none (invalidated meanwhile): nothing to mirror.
    if (entry === undefined || !('value' in entry)) return;
    const record = sessionFrom((entry as { value: unknown }).value);
    let nested: string | null = null;
    if (record !== null && !(isEmptyObject(record.user) && isEmptyObject(record.data))) {
      nested = JSON.stringify([record.user, record.data]);
    }
    this.decodedSessions.set(key, { entry, record, nested });
  }

  /** Drops the decoded session of a node-redis cache key, when it is an `HGETALL` one. */
  private forget(cacheKey: string): void {
    const sessions = this.decodedSessions;
    if (sessions.size === 0) return;
    const match = /^7_\d+_HGETALL_/.exec(cacheKey);
    if (match) sessions.delete(cacheKey.slice(match[0].length));
  }

  override set(
    cacheKey: string,
    cacheEntry: Parameters<BasicPooledClientSideCache['set']>[1],
    keys: Parameters<BasicPooledClientSideCache['set']>[2],
  ): void {
    this.forget(cacheKey);
    super.set(cacheKey, cacheEntry, keys);
  }

  override delete(cacheKey: string): void {
    this.forget(cacheKey);
    super.delete(cacheKey);
  }

  override deleteOldest(): void {
    const oldest = this.entryEntries().next();
    if (oldest.done) this.decodedSessions.clear();
    else this.forget(oldest.value[0]);
    super.deleteOldest();
  }

  override invalidate(key: Parameters<BasicPooledClientSideCache['invalidate']>[0]): void {
    if (key === null) this.decodedSessions.clear();
    else this.decodedSessions.delete(key.toString());
    super.invalidate(key);
  }

  override clear(resetStats?: boolean): void {
    this.decodedSessions.clear();
    super.clear(resetStats);
  }

  override disable(): void {
    this.isActive = false;
    this.decodedSessions.clear();
    super.disable();
  }

  override enable(): void {
    this.isActive = true;
    this.decodedSessions.clear();
    super.enable();
  }

  override onError(): void {
    this.clear(false);
    this.disable();
  }

  override onClose(): void {
    this.clear(false);
    this.disable();
  }
}

/**
 * Build the cache for a client (or cluster) your app creates itself:
 * `createClient({ RESP: 3, clientSideCache: createValidationCache(), disableOfflineQueue: true })`.
 * The store re-enables it when a connection is ready again.
 */
export function createValidationCache(options: { maxEntries?: number } = {}): ValidationCache {
  return new ValidationCache(options);
}
