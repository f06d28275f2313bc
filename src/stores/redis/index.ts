import { createClient } from 'redis';
import type {
  AttemptRule,
  DataChange,
  DataUpdate,
  LatchkeyStore,
  ThrottleDecision,
} from '../../core/capabilities.js';
import { ConfigError } from '../../core/errors.js';
import type {
  FactorKind,
  FactorRecord,
  RememberRecord,
  SessionRecord,
  UserRecord,
} from '../../core/store.js';
import { ValidationCache, type ValidationCacheOptions } from './cache.js';
import { Keyspace, pingEveryNode, type RedisConnection } from './connection.js';
import { RedisFactors } from './factors.js';
import { RedisRemember } from './remember.js';
import { RedisSessions } from './sessions.js';
import { RedisThrottle } from './throttle.js';
import { RedisUsers } from './users.js';

export { createValidationCache, ValidationCache, type ValidationCacheOptions } from './cache.js';
export type { RedisConnection } from './connection.js';

export interface RedisStoreOptions {
  /** Prepended to every key, so several apps (or test runs) share one Redis. Default `"latchkey:"`. */
  prefix?: string;
  /**
   * Validation cache (URL form only): RESP3 server-assisted client-side caching, so a repeated
   * validation sends no command and any process's write or delete invalidates every copy.
   * `true` keeps at most 10,000 entries and serves them only while a heartbeat answered within
   * the last 1,000 ms (`maxStaleness`). Default: off.
   */
  cache?: boolean | ValidationCacheOptions;
  /** URL form: how long a call waits for the very first connection. Default 2,000 ms. */
  connectTimeout?: number;
}

/**
 * Sessions, users, login-attempt windows and remember-me tokens in Redis or Redis Cluster
 * (node-redis v5+, Redis 7+), one role file each, composed into the one store the server uses.
 *
 * Key layout, chosen so that every script touches a single hash slot (Redis Cluster):
 * - `s:<id>`: one hash per session, in its own slot, expiring at `idleExpiresAt` (PEXPIREAT).
 *   Validation is one HGETALL of it (cacheable, see {@link RedisStoreOptions.cache}). Compact
 *   fields (see records.ts): `u` userId, `c` createdAt, `s` `e` `x` `w` the other times as offsets
 *   from `c` (`s`, `w` absent when 0), `p` ip, `g` user agent, `n` user snapshot, `v` `m` the
 *   assurance level and methods (absent: 1, none), `d:<key>` (JSON) per top-level key of `data`,
 *   so `updateData` is HSET/HDEL of fields; every value at most 64 bytes (longer texts in parts)
 *   so the hash stays a listpack. Earlier versions' hashes (absolute `l` `i` `a` `t`, or a
 *   `record` field) are still read, touched and updated in their own layout.
 * - `{i:<bucket>}`: the index, one hash per bucket of users (16,384, by sha256(userId)), field
 *   <12-character user tag><id> → idleExpiresAt, so a user with one session costs one field, not
 *   a key. Everything per user (the cap, the list, revoke-all) is one script on the bucket, O(its
 *   size); the cap is decided there atomically (so parallel logins never exceed it). On one Redis
 *   server the record and its entry are written by one script; on Cluster the entry comes first
 *   and the create checks it is still there after writing the record. `{i:<bucket>}:e` holds the
 *   entries a revoke-all took out but whose records may not be deleted yet: the next revoke-all
 *   and create still see them. Entries leave when their session is deleted or found gone, when a
 *   create in the bucket finds them dead, and in the sweep. An entry is raised before its record.
 * - `{u:<sha256(userId)>}:i`, `:live`, `:age`, `:evicting`: earlier versions' per-user index,
 *   still listed, counted against the cap, touched and revoked; `expiries`, their sweep index,
 *   is drained by the sweep. Neither is written any more.
 * - `{users}:…`, `{throttle}:…`, `{remember}:…`: one slot each, so uniqueness of usernames, the
 *   attempt counter and token rotation are single atomic scripts. A user's second factors are
 *   one hash, `{users}:f:<userId>`, so deleting the account takes them in the same script.
 */
export class RedisStore implements LatchkeyStore {
  readonly client: RedisConnection;
  /** The validation cache in use, or null. */
  readonly cache: ValidationCache | null;
  private readonly ownsClient: boolean;
  private readonly redis: Keyspace;
  private readonly sessions: RedisSessions;
  private readonly users: RedisUsers;
  private readonly throttle: RedisThrottle;
  private readonly remember: RedisRemember;
  private readonly factors: RedisFactors;
  /** Listeners this store put on the connection, taken off again in `close()`. */
  private readonly listeners: [string, () => void][] = [];
  /** Stops the validation cache's heartbeat. */
  private readonly stopHeartbeat: () => void = () => {};

  /**
   * `connection` is a node-redis client or cluster your app created and connected (the store
   * never closes it; create it with `disableOfflineQueue: true` so an outage fails fast), or a
   * `redis://` / `rediss://` URL (the store connects, reconnects, and closes it in `close()`).
   * Bad options throw a {@link ConfigError}.
   */
  constructor(connection: RedisConnection | string, options: RedisStoreOptions = {}) {
    const { prefix, cache, connectTimeout } = settingsOf(connection, options);
    this.ownsClient = typeof connection === 'string';
    let firstConnection: Promise<unknown> | null = null;
    if (typeof connection === 'string') {
      this.cache = cache === null ? null : new ValidationCache(cache);
      const client = clientFor(connection, connectTimeout, this.cache);
      // Errors surface as rejected calls; the listener keeps a connection error from crashing.
      client.on('error', () => {});
      this.client = client;
      firstConnection = client.connect();
    } else {
      if (cache !== null) {
        throw new ConfigError(
          'cache: for a client you create, pass clientSideCache: createValidationCache() (with RESP: 3) to createClient instead',
        );
      }
      this.client = connection;
      const own = (connection as { clientSideCache?: unknown }).clientSideCache;
      this.cache = own instanceof ValidationCache ? own : null;
    }
    this.redis = new Keyspace(
      this.client,
      prefix,
      firstConnection,
      connectTimeout,
      this.cache !== null,
    );
    this.sessions = new RedisSessions(this.redis, this.cache);
    this.users = new RedisUsers(this.redis);
    this.throttle = new RedisThrottle(this.redis);
    this.remember = new RedisRemember(this.redis);
    this.factors = new RedisFactors(this.redis);
    const validationCache = this.cache;
    if (validationCache) {
      // A connection that is ready again has re-enabled tracking (it is part of the handshake).
      // `node-ready` is a cluster's: one of its nodes is back.
      const enable = () => validationCache.enable();
      for (const event of ['ready', 'node-ready']) {
        this.client.on(event, enable);
        this.listeners.push([event, enable]);
      }
      this.stopHeartbeat = validationCache.heartbeat(pingEveryNode(this.client));
    }
  }

  /** Opens a store on a URL and waits until Redis answers (rejects after `connectTimeout`). */
  static async connect(url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    const store = new RedisStore(url, options);
    try {
      await store.redis.connected();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  async close(): Promise<void> {
    // A client the app passed in outlives the store: leave nothing of the store on it.
    this.stopHeartbeat();
    for (const [event, listener] of this.listeners.splice(0)) this.client.off?.(event, listener);
    if (!this.ownsClient) return;
    if (this.client.isReady) await this.client.close();
    else this.client.destroy();
  }

  // Sessions (the required port, the per-user index, the data patch and the sweep).

  create(record: SessionRecord): Promise<void> {
    return this.sessions.create(record);
  }
  createCapped(record: SessionRecord, max: number): Promise<boolean> {
    return this.sessions.createCapped(record, max);
  }
  get(id: string): Promise<SessionRecord | null> {
    return this.sessions.get(id);
  }
  touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    return this.sessions.touch(id, lastSeenAt, idleExpiresAt);
  }
  delete(id: string): Promise<boolean> {
    return this.sessions.delete(id);
  }
  updateData(id: string, change: DataChange): Promise<DataUpdate> {
    return this.sessions.updateData(id, change);
  }
  listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    return this.sessions.listByUser(userId, now);
  }
  deleteByUser(userId: string, exceptId?: string): Promise<number> {
    return this.sessions.deleteByUser(userId, exceptId);
  }
  deleteExpired(now: number): Promise<number> {
    return this.sessions.deleteExpired(now);
  }

  // Users.

  createUser(user: UserRecord): Promise<boolean> {
    return this.users.createUser(user);
  }
  findUserById(id: string): Promise<UserRecord | null> {
    return this.users.findUserById(id);
  }
  findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    return this.users.findUserByKey(usernameKey);
  }
  listUsers(): Promise<UserRecord[]> {
    return this.users.listUsers();
  }
  updateUser(id: string, changes: { passwordHash?: string; disabled?: boolean }): Promise<boolean> {
    return this.users.updateUser(id, changes);
  }
  deleteUser(id: string): Promise<boolean> {
    return this.users.deleteUser(id);
  }

  // Login throttle.

  consumeAttempt(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision> {
    return this.throttle.consumeAttempt(key, now, rule);
  }
  resetAttempts(key: string): Promise<void> {
    return this.throttle.resetAttempts(key);
  }
  deleteExpiredAttempts(now: number): Promise<number> {
    return this.throttle.deleteExpiredAttempts(now);
  }

  // Remember-me tokens.

  createRemember(record: RememberRecord): Promise<void> {
    return this.remember.createRemember(record);
  }
  findRemember(selector: string): Promise<RememberRecord | null> {
    return this.remember.findRemember(selector);
  }
  rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    return this.remember.rotateRemember(selector, successor, now);
  }
  deleteRemember(selector: string): Promise<boolean> {
    return this.remember.deleteRemember(selector);
  }
  deleteRememberByUser(userId: string): Promise<number> {
    return this.remember.deleteRememberByUser(userId);
  }
  deleteExpiredRemember(now: number): Promise<number> {
    return this.remember.deleteExpiredRemember(now);
  }

  // Second factors.

  createFactor(factor: FactorRecord): Promise<void> {
    return this.factors.createFactor(factor);
  }
  listFactors(userId: string): Promise<FactorRecord[]> {
    return this.factors.listFactors(userId);
  }
  updateFactor(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): Promise<boolean> {
    return this.factors.updateFactor(userId, id, changes);
  }
  advanceFactorCounter(userId: string, id: string, counter: number, now: number): Promise<boolean> {
    return this.factors.advanceFactorCounter(userId, id, counter, now);
  }
  deleteFactor(userId: string, id: string): Promise<boolean> {
    return this.factors.deleteFactor(userId, id);
  }
  deleteFactors(userId: string, kind?: FactorKind): Promise<number> {
    return this.factors.deleteFactors(userId, kind);
  }
}

/** The options, checked: every mistake is a ConfigError naming the option. */
function settingsOf(
  connection: unknown,
  options: unknown,
): { prefix: string; cache: ValidationCacheOptions | null; connectTimeout: number } {
  if (typeof connection !== 'string' && !isConnection(connection)) {
    throw new ConfigError('connection: must be a redis:// URL or a node-redis client or cluster');
  }
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options: must be an object');
  }
  const {
    prefix = 'latchkey:',
    cache = false,
    connectTimeout = 2000,
  } = options as RedisStoreOptions;
  if (typeof prefix !== 'string') throw new ConfigError('prefix: must be a string');
  if (typeof cache !== 'boolean' && (typeof cache !== 'object' || cache === null)) {
    throw new ConfigError('cache: must be true, false or { maxEntries, maxStaleness }');
  }
  if (typeof connectTimeout !== 'number' || !(connectTimeout > 0) || connectTimeout === Infinity) {
    throw new ConfigError('connectTimeout: must be a number of milliseconds > 0');
  }
  return { prefix, cache: cache === false ? null : cache === true ? {} : cache, connectTimeout };
}

function isConnection(value: unknown): value is RedisConnection {
  if (typeof value !== 'object' || value === null) return false;
  const methods = value as Record<string, unknown>;
  return ['hGetAll', 'eval', 'evalSha', 'on'].every((name) => typeof methods[name] === 'function');
}

/** The store's own client on `url`: RESP3, no offline queue, reconnecting with backoff. */
function clientFor(url: string, connectTimeout: number, cache: ValidationCache | null) {
  try {
    return createClient({
      url,
      RESP: 3,
      // A down Redis must fail each call at once (the core answers 503), not queue it forever.
      disableOfflineQueue: true,
      socket: {
        connectTimeout,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
      },
      ...(cache ? { clientSideCache: cache } : {}),
    });
  } catch (error) {
    // node-redis' own message (bad URL, protocol or database), never the URL: it may hold a password.
    throw new ConfigError(`url: ${error instanceof Error ? error.message : String(error)}`);
  }
}
