import { BasicPooledClientSideCache } from 'redis';
import { ConfigError } from '../../core/errors.js';
import type { JsonObject, SessionRecord } from '../../core/store.js';
import { sessionFrom } from './records.js';

/** What {@link ValidationCache} keeps beside a node-redis entry: that entry's session, decoded. */
interface DecodedSession {
  /** The node-redis cache entry it was decoded from: served only while that entry is current. */
  readonly entry: object;
  /** That entry's node-redis cache key. */
  readonly cacheKey: string;
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
  /** How old (ms) the last proof that invalidations reach us may be while entries are served. */
  readonly maxStaleness: number;

  constructor(options: ValidationCacheOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new ConfigError('cache.maxEntries: must be a whole number >= 1');
    }
    const maxStaleness = options.maxStaleness ?? 1000;
    if (!Number.isInteger(maxStaleness) || maxStaleness < 20) {
      throw new ConfigError('cache.maxStaleness: must be a whole number of milliseconds >= 20');
    }
    super({ maxEntries, evictPolicy: 'LRU', recordStats: true });
    this.maxStaleness = maxStaleness;
  }

  /**
   * False while a connection is down, or while no heartbeat sent within the last `maxStaleness`
   * ms has been answered (every read then goes to Redis). Lapsing empties the cache.
   */
  get active(): boolean {
    if (this.serving && performance.now() - this.provenAt > this.maxStaleness) {
      this.serving = false;
      this.decodedSessions.clear();
      super.clear(false);
      super.disable();
    }
    return this.serving;
  }

  /** Up as far as node-redis told us (`onError`/`onClose` make it false, `enable` true). */
  private connected = true;
  /** Whether entries are served: connected, and proven alive within `maxStaleness`. */
  private serving = false;
  /** `performance.now()` when the latest answered heartbeat was sent. */
  private provenAt = Number.NEGATIVE_INFINITY;
  /** Sends one heartbeat now (a connection is ready again), while the heartbeat runs. */
  private beat: (() => void) | null = null;
  /** Session key (`HGETALL` key) → the session decoded from node-redis' entry for it. */
  private readonly decodedSessions = new Map<string, DecodedSession>();

  /**
   * Proves the invalidation channel alive every `maxStaleness / 4` ms with `ping` (a PING on
   * every connection that tracks keys for this cache). Replies and invalidation pushes share one
   * ordered stream, so a reply means every invalidation Redis sent before it got the PING has
   * been applied: entries are then current as of the moment the PING was sent. Gives a stop
   * function.
   */
  heartbeat(ping: () => Promise<unknown>): () => void {
    let pending = false;
    const beat = (): void => {
      if (pending) return;
      pending = true;
      const sentAt = performance.now();
      ping()
        .then(() => {
          this.provenAt = Math.max(this.provenAt, sentAt);
          this.resume();
        })
        .catch(() => {})
        .finally(() => {
          pending = false;
        });
    };
    this.beat = beat;
    beat();
    const timer = setInterval(beat, Math.max(5, Math.floor(this.maxStaleness / 4)));
    timer.unref();
    return () => {
      clearInterval(timer);
      this.beat = null;
    };
  }

  /** Serves again once connected and proven: empty, for reads meanwhile may have missed theirs. */
  private resume(): void {
    if (this.serving || !this.connected) return;
    if (performance.now() - this.provenAt > this.maxStaleness) return;
    this.decodedSessions.clear();
    super.clear(false);
    super.enable();
    this.serving = true;
  }

  override get(cacheKey: string): ReturnType<BasicPooledClientSideCache['get']> {
    // node-redis asks here before it sends a cacheable command: a lapsed cache answers nothing.
    return this.active ? super.get(cacheKey) : undefined;
  }

  /**
   * The session stored at `key` if node-redis holds a current entry for `HGETALL key` that was
   * decoded already: a fresh copy (the caller may change it), null for "no such session", or
   * undefined when the read must go through node-redis.
   */
  decodedSession(key: string): SessionRecord | null | undefined {
    const decoded = this.decodedSessions.get(key);
    if (decoded === undefined) return undefined;
    // Also keeps node-redis' LRU order, and gives undefined while the cache is off.
    if (this.get(decoded.cacheKey) !== decoded.entry) {
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
    if (!this.active) return;
    const cacheKey = hGetAllCacheKey(key);
    const entry = this.get(cacheKey);
    // A promise entry (a read still under way) or none (invalidated meanwhile): nothing to mirror.
    if (entry === undefined || !('value' in entry)) return;
    const record = sessionFrom((entry as { value: unknown }).value);
    let nested: string | null = null;
    if (record !== null && !(isEmptyObject(record.user) && isEmptyObject(record.data))) {
      nested = JSON.stringify([record.user, record.data]);
    }
    this.decodedSessions.set(key, { entry, cacheKey, record, nested });
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
    this.connected = false;
    this.serving = false;
    this.decodedSessions.clear();
    super.disable();
  }

  /** A connection is ready again: entries are served again once a heartbeat proves it. */
  override enable(): void {
    this.connected = true;
    this.resume();
    this.beat?.();
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

/** The validation cache's options (the store's `cache` option, or {@link createValidationCache}). */
export interface ValidationCacheOptions {
  /** Most entries kept (LRU). Default 10,000. */
  maxEntries?: number;
  /**
   * Longest time (ms) a cached session may outlive its revocation when invalidations stop
   * arriving without the connection closing (a frozen network, a hung Redis). Default 1,000.
   */
  maxStaleness?: number;
}

/**
 * Build the cache for a client (or cluster) your app creates itself:
 * `createClient({ RESP: 3, clientSideCache: createValidationCache(), disableOfflineQueue: true })`.
 * The store re-enables it when a connection is ready again and runs its heartbeat.
 */
export function createValidationCache(options: ValidationCacheOptions = {}): ValidationCache {
  return new ValidationCache(options);
}
