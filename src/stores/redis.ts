import { createHash } from 'node:crypto';
import { BasicPooledClientSideCache, createClient } from 'redis';
import { ConfigError } from '../core/errors.js';
import type {
  CreateResult,
  DataChange,
  DataUpdate,
  JsonObject,
  JsonValue,
  LatchkeyStore,
  RememberRecord,
  SessionCap,
  SessionRecord,
  ThrottleDecision,
  ThrottleRule,
  UserRecord,
} from '../core/store.js';

/**
 * What the store needs from node-redis: a client (`createClient`) or a cluster (`createCluster`)
 * both fit. Reads of a session go through `hGetAll` so node-redis' client-side cache can serve
 * them; everything else is a Lua script, so each step is one atomic command on one hash slot.
 */
export interface RedisConnection {
  hGetAll(key: string): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  readonly isReady: boolean;
  on(event: string, listener: () => void): unknown;
  off?(event: string, listener: () => void): unknown;
  close(): Promise<unknown>;
  destroy(): unknown;
}

export interface RedisStoreOptions {
  /** Prepended to every key, so several apps (or test runs) share one Redis. Default `"latchkey:"`. */
  prefix?: string;
  /**
   * Validation cache (URL form only): RESP3 server-assisted client-side caching, so a repeated
   * validation sends no command and any process's write or delete invalidates every copy.
   * `true` keeps at most 10,000 entries. Default: off.
   */
  cache?: boolean | { maxEntries?: number };
  /** URL form: how long a call waits for the very first connection. Default 2,000 ms. */
  connectTimeout?: number;
}

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

/**
 * Records dead by this process's clock stay this long, so a caller whose clock differs (skew, an
 * injected test clock) still sees what the contract promises; live records expire exactly on time.
 */
const LINGER_MS = 60_000;
const SWEEP_BATCH = 500;

const expireAtFor = (deadline: number): string =>
  String(Math.trunc(Math.max(deadline, Date.now() + LINGER_MS)));

interface Script {
  readonly source: string;
  readonly sha1: string;
}

/**
 * How a script may run, declared with a Redis 7 shebang. Declaring it also makes Redis Cluster
 * refuse any key outside the slot of the declared keys, even when that slot lives on the same
 * node (a script without a shebang is only refused when the key is on another node, so a
 * cross-slot bug would pass or fail depending on how slots happen to be spread).
 * - `write`: refused as a whole, before it changes anything, while Redis is out of memory;
 * - `read`: `no-writes`, so it runs even then;
 * - `delete`: only ever removes data, so `allow-oom`: a logout or revocation works on a full Redis.
 */
type ScriptKind = 'write' | 'read' | 'delete';

const SHEBANG: Record<ScriptKind, string> = {
  write: '#!lua',
  read: '#!lua flags=no-writes',
  delete: '#!lua flags=allow-oom',
};

function script(body: string, kind: ScriptKind = 'write'): Script {
  const source = `${SHEBANG[kind]}\n${body}`;
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/** Extends a key's expiry to `at`, never shortening it (PEXPIREAT GT ignores keys without one). */
const EXTEND = `
local function extend(key, at)
  local current = redis.call('PEXPIRETIME', key)
  if current >= 0 and current >= tonumber(at) then return end
  if current ~= -2 then redis.call('PEXPIREAT', key, at) end
end
`;

/** Writes a whole record: ARGV[6..] are its \`d:<key>\` data fields, name then JSON value. */
const SESSION_WRITE = script(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'userId', ARGV[2], 'lastSeenAt', ARGV[3], 'idleExpiresAt', ARGV[4])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1`);

/**
 * SessionStore.updateData on the record's own hash: HDELs and HSETs \`d:<key>\` fields, never
 * reading or re-encoding a JSON value (so \`[]\`, numbers and strings stay byte for byte). ARGV:
 * number of removals, maxBytes, the \`d:\` names to remove, then name/value pairs to set.
 * Gives {1} done, {0} no record, {-1} too large, or {2, record} for a record written before data
 * had fields of its own (its data still inside \`record\`): converted by SESSION_CONVERT first.
 */
const SESSION_UPDATE_DATA = script(`
local record = redis.call('HGET', KEYS[1], 'record')
if not record then return {0} end
if string.sub(record, -10) ~= '"data":{}}' then return {2, record} end
local removed, max = tonumber(ARGV[1]), tonumber(ARGV[2])
local sizes = {}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'd:' then sizes[fields[i]] = #fields[i + 1] end
end
-- Bytes of {"key":value,...} (keys unescaped): each field adds 2 + #name - 2 + 1 + #value + 1.
local function measure()
  local total, n = 1, 0
  for name, length in pairs(sizes) do
    total = total + #name + length + 2
    n = n + 1
  end
  if n == 0 then return 2 end
  return total
end
local before = measure()
for i = 3, 2 + removed do sizes[ARGV[i]] = nil end
for i = 3 + removed, #ARGV, 2 do sizes[ARGV[i]] = #ARGV[i + 1] end
local after = measure()
if after > max and after > before then return {-1} end
for i = 3, 2 + removed do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = 3 + removed, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return {1}`);

/** Moves an older record's data into fields, if \`record\` is still ARGV[1]; fields set since win. */
const SESSION_CONVERT = script(`
if redis.call('HGET', KEYS[1], 'record') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1`);

const SESSION_TOUCH = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'lastSeenAt', ARGV[1], 'idleExpiresAt', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1`);

/** Gives the deleted record's user id, or nil when there was none. */
const SESSION_DELETE = script(
  `
local userId = redis.call('HGET', KEYS[1], 'userId')
if not userId then return nil end
redis.call('DEL', KEYS[1])
return userId`,
  'delete',
);

/** Sweep step for one record: 1 deleted (dead at ARGV[1]), 0 gone already, else its live deadline. */
const SESSION_DELETE_IF_DEAD = script(
  `
local idle = redis.call('HGET', KEYS[1], 'idleExpiresAt')
if not idle then return {0} end
if tonumber(idle) > tonumber(ARGV[1]) then return {2, idle} end
local userId = redis.call('HGET', KEYS[1], 'userId')
redis.call('DEL', KEYS[1])
return {1, userId}`,
  'delete',
);

/**
 * The per-user index, one hash slot: \`live\` (id → idleExpiresAt), \`age\` (id → createdAt),
 * \`evicting\` (ids evicted whose records may not be deleted yet). Forgets sessions dead at the new
 * one's creation, applies the cap, adds the new id. Gives {created, evicted ids, ids to delete}.
 */
const INDEX_ADD = script(`${EXTEND}
local live, age, evicting = KEYS[1], KEYS[2], KEYS[3]
local id, createdAt, idle, max, policy, expireAt = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
for _, dead in ipairs(redis.call('ZRANGE', live, '-inf', createdAt, 'BYSCORE')) do
  redis.call('ZREM', live, dead)
  redis.call('ZREM', age, dead)
end
local evicted = {}
if max > 0 then
  local count = redis.call('ZCARD', age)
  if count >= max then
    if policy == 'reject' then return {0, {}, {}} end
    evicted = redis.call('ZRANGE', age, 0, count - max)
    for _, old in ipairs(evicted) do
      redis.call('ZREM', live, old)
      redis.call('ZREM', age, old)
      redis.call('SADD', evicting, old)
    end
  end
end
redis.call('ZADD', live, idle, id)
redis.call('ZADD', age, createdAt, id)
for _, key in ipairs(KEYS) do extend(key, expireAt) end
return {1, evicted, redis.call('SMEMBERS', evicting)}`);

/** Raises a listed session's deadline; a session no longer listed (deleted, evicted) stays out. */
const INDEX_TOUCH = script(`${EXTEND}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
for _, key in ipairs(KEYS) do extend(key, ARGV[3]) end
return 1`);

const INDEX_REMOVE = script(
  `
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('SREM', KEYS[3], ARGV[i])
end
return #ARGV`,
  'delete',
);

/** Every id the index knows, listed ones (oldest first) then those still being evicted. */
const INDEX_MEMBERS = script(
  `
return {redis.call('ZRANGE', KEYS[2], 0, -1), redis.call('SMEMBERS', KEYS[3])}`,
  'read',
);

const ZADD = script(`return redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])`);
const ZADD_RAISE = script(`return redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[1], ARGV[2])`);
const ZREM = script(
  `
for i = 1, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
return #ARGV`,
  'delete',
);
const ZRANGE_UNTIL = script(
  `return redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])`,
  'read',
);

/** Users live in one slot ({users}) so the username-key reservation is one atomic script. */
const USER_CREATE = script(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'username', ARGV[2], 'usernameKey', ARGV[3],
  'passwordHash', ARGV[4], 'createdAt', ARGV[5], 'disabled', ARGV[6])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
return 1`);

const USER_BY_KEY = script(
  `
local id = redis.call('GET', KEYS[1])
if not id then return {} end
return redis.call('HGETALL', ARGV[1] .. id)`,
  'read',
);

const USER_LIST = script(
  `
local users = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local user = redis.call('HGETALL', ARGV[1] .. id)
  if #user > 0 then users[#users + 1] = user end
end
return users`,
  'read',
);

const USER_UPDATE = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'passwordHash', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'disabled', ARGV[2]) end
return 1`);

const USER_DELETE = script(
  `
local usernameKey = redis.call('HGET', KEYS[1], 'usernameKey')
if not usernameKey then return 0 end
local byKey = ARGV[2] .. usernameKey
if redis.call('GET', byKey) == ARGV[1] then redis.call('DEL', byKey) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`,
  'delete',
);

/** The ThrottleStore.consumeAttempt algorithm, word for word, in one slot ({throttle}). */
const ATTEMPT_CONSUME = script(`
local now, windowMs, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local free, base, maxDelay, floor = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local saved = redis.call('HMGET', KEYS[1], 'count', 'windowEnd', 'nextAllowedAt')
local count, windowEnd, nextAllowedAt = tonumber(saved[1]), tonumber(saved[2]), tonumber(saved[3])
if count and now < windowEnd then
  local atLimit = count >= limit
  if atLimit or now < nextAllowedAt then
    local retryAt = nextAllowedAt
    if atLimit and windowEnd > retryAt then retryAt = windowEnd end
    return {0, count, string.format('%d', retryAt)}
  end
else
  count, windowEnd = 0, now + windowMs
end
count = count + 1
local delay = 0
if count >= free then delay = math.min(base * 2 ^ (count - free), maxDelay) end
nextAllowedAt = now + delay
redis.call('HSET', KEYS[1], 'count', count, 'windowEnd', string.format('%d', windowEnd),
  'nextAllowedAt', string.format('%d', nextAllowedAt))
redis.call('ZADD', KEYS[2], string.format('%d', windowEnd), ARGV[1])
redis.call('PEXPIREAT', KEYS[1], string.format('%d', math.max(windowEnd, nextAllowedAt, floor)))
return {1, count, string.format('%d', now)}`);

const ATTEMPT_RESET = script(
  `
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])`,
  'delete',
);

/** Deletes a batch of windows ended at ARGV[1]; gives {entries looked at, windows deleted}. */
const ATTEMPT_SWEEP = script(
  `
local keys = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3])
local deleted = 0
for _, key in ipairs(keys) do
  local window = ARGV[2] .. key
  local windowEnd = tonumber(redis.call('HGET', window, 'windowEnd'))
  if windowEnd and windowEnd <= tonumber(ARGV[1]) then deleted = deleted + redis.call('DEL', window) end
  redis.call('ZREM', KEYS[1], key)
end
return {#keys, deleted}`,
  'delete',
);

/** Remember-me tokens live in one slot ({remember}): rotation writes two tokens atomically. */
const REMEMBER_INSERT = `
local function insert(key, userSet, fields, expiresAt, expireAt, selector)
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIREAT', key, expireAt)
  redis.call('SADD', userSet, selector)
  redis.call('ZADD', KEYS[#KEYS], expiresAt, selector)
end
`;

const REMEMBER_CREATE = script(`${REMEMBER_INSERT}
insert(KEYS[1], KEYS[2], cjson.decode(ARGV[1]), ARGV[2], ARGV[3], ARGV[4])
return 1`);

const REMEMBER_ROTATE = script(`${REMEMBER_INSERT}
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'replacedBy') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'replacedBy', ARGV[1], 'replacedAt', ARGV[2])
insert(KEYS[2], KEYS[3], cjson.decode(ARGV[3]), ARGV[4], ARGV[5], ARGV[1])
return 1`);

const REMEMBER_DELETE = script(
  `
local userId = redis.call('HGET', KEYS[1], 'userId')
if not userId then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. userId, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`,
  'delete',
);

const REMEMBER_DELETE_BY_USER = script(
  `
local deleted = 0
for _, selector in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  deleted = deleted + redis.call('DEL', ARGV[1] .. selector)
  redis.call('ZREM', KEYS[2], selector)
end
redis.call('DEL', KEYS[1])
return deleted`,
  'delete',
);

const REMEMBER_SWEEP = script(
  `
local selectors = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[4])
local deleted = 0
for _, selector in ipairs(selectors) do
  local key = ARGV[2] .. selector
  local fields = redis.call('HMGET', key, 'expiresAt', 'userId')
  if fields[1] and tonumber(fields[1]) <= tonumber(ARGV[1]) then
    deleted = deleted + redis.call('DEL', key)
    redis.call('SREM', ARGV[3] .. fields[2], selector)
  end
  redis.call('ZREM', KEYS[1], selector)
end
return {#selectors, deleted}`,
  'delete',
);

/**
 * Sessions, users, login-attempt windows and remember-me tokens in Redis or Redis Cluster
 * (node-redis v5+, Redis 7+).
 *
 * Key layout, chosen so that every script touches a single hash slot (Redis Cluster):
 * - `s:<id>`: one hash per session, in its own slot, expiring at `idleExpiresAt` (PEXPIREAT).
 *   Validation is one HGETALL of it (cacheable, see {@link RedisStoreOptions.cache}). Fields:
 *   `record` (the JSON record, `data` left empty), `userId`, `lastSeenAt`, `idleExpiresAt`, and
 *   `d:<key>` (JSON) for each top-level key of `data`, so `updateData` is HSET/HDEL of fields.
 * - `{u:<sha256(userId)>}:live|age|evicting`: the per-user index, all in the user's slot. The cap
 *   is decided there atomically (so parallel logins never exceed it); a session key is in another
 *   slot, so the record is written BEFORE it is indexed and evicted records are deleted AFTER the
 *   index lets go of them. Evicted ids wait in `evicting` until deleted, so a crash in between
 *   never leaves a live session that "revoke all" cannot see. The index's deadline for an id is
 *   raised before the record's, so the index never forgets a live session.
 * - `expiries`: id → idleExpiresAt for `deleteExpired` (Redis' own TTL does the real expiring).
 * - `{users}:…`, `{throttle}:…`, `{remember}:…`: one slot each, so uniqueness of usernames, the
 *   attempt counter and token rotation are single atomic scripts.
 */
export class RedisStore implements LatchkeyStore {
  readonly client: RedisConnection;
  /** The validation cache in use, or null. */
  readonly cache: ValidationCache | null;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private firstConnection: Promise<void> | null = null;
  private readonly connectTimeout: number;
  /** Listeners this store put on the connection, taken off again in `close()`. */
  private readonly listeners: [string, () => void][] = [];

  /**
   * `connection` is a node-redis client or cluster your app created and connected (the store
   * never closes it; create it with `disableOfflineQueue: true` so an outage fails fast), or a
   * `redis://` / `rediss://` URL (the store connects, reconnects, and closes it in `close()`).
   */
  constructor(connection: RedisConnection | string, options: RedisStoreOptions = {}) {
    const prefix = options.prefix ?? 'latchkey:';
    if (typeof prefix !== 'string') throw new ConfigError('prefix: must be a string');
    this.prefix = prefix;
    this.connectTimeout = options.connectTimeout ?? 2000;
    const cacheOption = options.cache ?? false;
    this.ownsClient = typeof connection === 'string';
    if (typeof connection === 'string') {
      this.cache =
        cacheOption === false ? null : new ValidationCache(cacheOption === true ? {} : cacheOption);
      const client = createClient({
        url: connection,
        RESP: 3,
        // A down Redis must fail each call at once (the core answers 503), not queue it forever.
        disableOfflineQueue: true,
        socket: {
          connectTimeout: this.connectTimeout,
          reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
        },
        ...(this.cache ? { clientSideCache: this.cache } : {}),
      });
      // Errors surface as rejected calls; the listener keeps a connection error from crashing.
      client.on('error', () => {});
      this.client = client;
      this.firstConnection = client.connect().then(
        () => {
          this.firstConnection = null;
        },
        () => {},
      );
    } else {
      if (cacheOption !== false) {
        throw new ConfigError(
          'cache: for a client you create, pass clientSideCache: createValidationCache() (with RESP: 3) to createClient instead',
        );
      }
      this.client = connection;
      const own = (connection as { clientSideCache?: unknown }).clientSideCache;
      this.cache = own instanceof ValidationCache ? own : null;
    }
    const cache = this.cache;
    if (cache) {
      // A connection that is ready again has re-enabled tracking (it is part of the handshake).
      // `node-ready` is a cluster's: one of its nodes is back.
      const enable = () => cache.enable();
      for (const event of ['ready', 'node-ready']) {
        this.client.on(event, enable);
        this.listeners.push([event, enable]);
      }
    }
  }

  /** Opens a store on a URL and waits until Redis answers (rejects after `connectTimeout`). */
  static async connect(url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    const store = new RedisStore(url, options);
    try {
      await store.redis();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  async create(record: SessionRecord, cap?: SessionCap): Promise<CreateResult> {
    const idle = String(record.idleExpiresAt);
    // Written before it is indexed: nobody holds the token yet, and the index never names a
    // record that was never written.
    await Promise.all([
      this.run(
        SESSION_WRITE,
        [this.sessionKey(record.id)],
        [
          recordJson(record),
          record.userId,
          String(record.lastSeenAt),
          idle,
          expireAtFor(record.idleExpiresAt),
          ...dataFields(record.data),
        ],
      ),
      this.run(ZADD, [this.key('expiries')], [idle, record.id]),
    ]);
    const reply = await this.run(INDEX_ADD, this.userKeys(record.userId), [
      record.id,
      String(record.createdAt),
      idle,
      String(cap?.max ?? 0),
      cap?.policy ?? 'evict-oldest',
      expireAtFor(record.idleExpiresAt),
    ]);
    const [created, evicted, pending] = reply as [number, string[], string[]];
    if (created === 0) {
      await this.deleteRecords([record.id]);
      return { created: false, evicted: [] };
    }
    if (pending.length > 0) {
      await this.deleteRecords(pending);
      await this.run(INDEX_REMOVE, this.userKeys(record.userId), pending);
    }
    return { created: true, evicted };
  }

  async get(id: string): Promise<SessionRecord | null> {
    const redis = await this.redis();
    const cache = this.cache;
    if (cache?.active) {
      // Redis writes an invalidation to every caching connection before it answers the writer, so
      // it is already in our socket when a request that follows the write arrives. One turn of the
      // event loop lets node-redis read it before the cache is consulted.
      await new Promise((resolve) => setImmediate(resolve));
      const key = this.sessionKey(id);
      const decoded = cache.decodedSession(key);
      if (decoded !== undefined) return decoded;
      const record = sessionFrom(await redis.hGetAll(key));
      cache.decodeSession(key);
      return record;
    }
    return sessionFrom(await redis.hGetAll(this.sessionKey(id)));
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    const current = await this.get(id);
    if (!current) return;
    const idle = String(idleExpiresAt);
    const expireAt = expireAtFor(idleExpiresAt);
    // Index first: if a later step fails, the index errs on keeping the session, never on losing it.
    await this.run(INDEX_TOUCH, this.userKeys(current.userId), [id, idle, expireAt]);
    await this.run(SESSION_TOUCH, [this.sessionKey(id)], [String(lastSeenAt), idle, expireAt]);
    await this.run(ZADD_RAISE, [this.key('expiries')], [idle, id]);
  }

  /** One script on the session's hash (one slot); HSET/HDEL invalidate cached copies. */
  async updateData(id: string, change: DataChange): Promise<DataUpdate> {
    const key = this.sessionKey(id);
    const args = [
      String(change.remove.length),
      String(change.maxBytes),
      ...change.remove.map((name) => `${DATA_FIELD}${name}`),
      ...dataFields(change.set),
    ];
    for (let attempt = 0; ; attempt++) {
      const [state, older] = (await this.run(SESSION_UPDATE_DATA, [key], args)) as [
        number,
        string?,
      ];
      if (state === 1) return 'updated';
      if (state === 0) return 'missing';
      if (state === -1) return 'too_large';
      if (older === undefined || attempt === 3) {
        throw new Error(`session ${id}: its record kept changing while its data was converted`);
      }
      const { data, ...rest } = JSON.parse(older) as SessionRecord;
      await this.run(SESSION_CONVERT, [key], [older, recordJson(rest), ...dataFields(data ?? {})]);
    }
  }

  async delete(id: string): Promise<boolean> {
    const userId = await this.run(SESSION_DELETE, [this.sessionKey(id)], []);
    if (typeof userId !== 'string') return false;
    await Promise.all([
      this.run(INDEX_REMOVE, this.userKeys(userId), [id]),
      this.run(ZREM, [this.key('expiries')], [id]),
    ]);
    return true;
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    const [listed] = (await this.run(INDEX_MEMBERS, this.userKeys(userId), [])) as [
      string[],
      string[],
    ];
    const redis = await this.redis();
    const records = await Promise.all(
      listed.map(async (id) => sessionFrom(await redis.hGetAll(this.sessionKey(id)))),
    );
    const gone = listed.filter((_, i) => records[i] === null);
    // Ids whose record expired (Redis TTL) leave the index here.
    if (gone.length > 0) await this.run(INDEX_REMOVE, this.userKeys(userId), gone);
    return records
      .filter((r): r is SessionRecord => r !== null && r.idleExpiresAt > now)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    const [listed, evicting] = (await this.run(INDEX_MEMBERS, this.userKeys(userId), [])) as [
      string[],
      string[],
    ];
    const ids = [...new Set([...listed, ...evicting])].filter((id) => id !== exceptId);
    if (ids.length === 0) return 0;
    // Records first: if this fails half-way, the index still names what is left to revoke.
    const deleted = await this.deleteRecords(ids);
    await this.run(INDEX_REMOVE, this.userKeys(userId), ids);
    return deleted;
  }

  async deleteExpired(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const ids = (await this.run(
        ZRANGE_UNTIL,
        [this.key('expiries')],
        [String(now), String(SWEEP_BATCH)],
      )) as string[];
      if (ids.length === 0) return total;
      const outcomes = await Promise.all(
        ids.map(async (id) => {
          const reply = await this.run(
            SESSION_DELETE_IF_DEAD,
            [this.sessionKey(id)],
            [String(now)],
          );
          const [state, detail] = reply as [number, string?];
          if (state === 2 && detail !== undefined) {
            // Still alive (a touch raced the expiry index): move its entry to the real deadline.
            await this.run(ZADD, [this.key('expiries')], [detail, id]);
            return 0;
          }
          await this.run(ZREM, [this.key('expiries')], [id]);
          if (state === 1 && detail !== undefined) {
            await this.run(INDEX_REMOVE, this.userKeys(detail), [id]);
            return 1;
          }
          return 0;
        }),
      );
      total += outcomes.reduce<number>((sum, n) => sum + n, 0);
    }
  }

  async close(): Promise<void> {
    // A client the app passed in outlives the store: leave nothing of the store on it.
    for (const [event, listener] of this.listeners.splice(0)) this.client.off?.(event, listener);
    if (!this.ownsClient) return;
    if (this.client.isReady) await this.client.close();
    else this.client.destroy();
  }

  async createUser(user: UserRecord): Promise<boolean> {
    const created = await this.run(
      USER_CREATE,
      [this.userKey(user.id), this.key(`{users}:key:${user.usernameKey}`), this.key('{users}:all')],
      [
        user.id,
        user.username,
        user.usernameKey,
        user.passwordHash,
        String(user.createdAt),
        user.disabled ? '1' : '0',
      ],
    );
    return created === 1;
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    const redis = await this.redis();
    return userFrom(await redis.hGetAll(this.userKey(id)));
  }

  async findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    const reply = await this.run(
      USER_BY_KEY,
      [this.key(`{users}:key:${usernameKey}`)],
      [this.key('{users}:id:')],
    );
    return userFrom(pairs(reply));
  }

  async listUsers(): Promise<UserRecord[]> {
    const reply = (await this.run(
      USER_LIST,
      [this.key('{users}:all')],
      [this.key('{users}:id:')],
    )) as unknown[];
    return reply.map((fields) => userFrom(pairs(fields))).filter((u) => u !== null);
  }

  async updateUser(
    id: string,
    changes: { passwordHash?: string; disabled?: boolean },
  ): Promise<boolean> {
    const disabled = changes.disabled === undefined ? '' : changes.disabled ? '1' : '0';
    const updated = await this.run(
      USER_UPDATE,
      [this.userKey(id)],
      [changes.passwordHash ?? '', disabled],
    );
    return updated === 1;
  }

  async deleteUser(id: string): Promise<boolean> {
    const deleted = await this.run(
      USER_DELETE,
      [this.userKey(id), this.key('{users}:all')],
      [id, this.key('{users}:key:')],
    );
    return deleted === 1;
  }

  async consumeAttempt(key: string, now: number, rule: ThrottleRule): Promise<ThrottleDecision> {
    const reply = await this.run(
      ATTEMPT_CONSUME,
      [this.key(`{throttle}:a:${key}`), this.key('{throttle}:ends')],
      [
        key,
        String(now),
        String(rule.windowMs),
        String(rule.limit),
        String(rule.freeAttempts),
        String(rule.baseDelayMs),
        String(rule.maxDelayMs),
        String(Date.now() + LINGER_MS),
      ],
    );
    const [allowed, count, retryAt] = reply as [number, number, string];
    return { allowed: allowed === 1, count, retryAt: Number(retryAt) };
  }

  async resetAttempts(key: string): Promise<void> {
    await this.run(
      ATTEMPT_RESET,
      [this.key(`{throttle}:a:${key}`), this.key('{throttle}:ends')],
      [key],
    );
  }

  async deleteExpiredAttempts(now: number): Promise<number> {
    return this.sweep(
      ATTEMPT_SWEEP,
      [this.key('{throttle}:ends')],
      [String(now), this.key('{throttle}:a:')],
    );
  }

  async createRemember(record: RememberRecord): Promise<void> {
    await this.run(
      REMEMBER_CREATE,
      [
        this.rememberKey(record.selector),
        this.key(`{remember}:u:${record.userId}`),
        this.key('{remember}:expiries'),
      ],
      [
        JSON.stringify(rememberFields(record)),
        String(record.expiresAt),
        expireAtFor(record.expiresAt),
        record.selector,
      ],
    );
  }

  async findRemember(selector: string): Promise<RememberRecord | null> {
    const redis = await this.redis();
    return rememberFrom(await redis.hGetAll(this.rememberKey(selector)));
  }

  async rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    const rotated = await this.run(
      REMEMBER_ROTATE,
      [
        this.rememberKey(selector),
        this.rememberKey(successor.selector),
        this.key(`{remember}:u:${successor.userId}`),
        this.key('{remember}:expiries'),
      ],
      [
        successor.selector,
        String(now),
        JSON.stringify(rememberFields(successor)),
        String(successor.expiresAt),
        expireAtFor(successor.expiresAt),
      ],
    );
    return rotated === 1;
  }

  async deleteRemember(selector: string): Promise<boolean> {
    const deleted = await this.run(
      REMEMBER_DELETE,
      [this.rememberKey(selector), this.key('{remember}:expiries')],
      [selector, this.key('{remember}:u:')],
    );
    return deleted === 1;
  }

  async deleteRememberByUser(userId: string): Promise<number> {
    const deleted = await this.run(
      REMEMBER_DELETE_BY_USER,
      [this.key(`{remember}:u:${userId}`), this.key('{remember}:expiries')],
      [this.key('{remember}:t:')],
    );
    return Number(deleted);
  }

  async deleteExpiredRemember(now: number): Promise<number> {
    return this.sweep(
      REMEMBER_SWEEP,
      [this.key('{remember}:expiries')],
      [String(now), this.key('{remember}:t:'), this.key('{remember}:u:')],
    );
  }

  /** Runs a batch sweep script until a batch comes back empty; gives how many it deleted. */
  private async sweep(sweepScript: Script, keys: string[], args: string[]): Promise<number> {
    let total = 0;
    for (;;) {
      const reply = await this.run(sweepScript, keys, [...args, String(SWEEP_BATCH)]);
      const [seen, deleted] = reply as [number, number];
      total += deleted;
      if (seen === 0) return total;
    }
  }

  /** Deletes session records (each in its own slot) and their expiry entries; gives how many existed. */
  private async deleteRecords(ids: readonly string[]): Promise<number> {
    const deleted = await Promise.all(
      ids.map((id) => this.run(SESSION_DELETE, [this.sessionKey(id)], [])),
    );
    await this.run(ZREM, [this.key('expiries')], [...ids]);
    return deleted.filter((userId) => typeof userId === 'string').length;
  }

  /** The connection, once it has connected at least once; later outages fail each call at once. */
  private async redis(): Promise<RedisConnection> {
    const pending = this.firstConnection;
    if (pending) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Redis did not answer within ${this.connectTimeout} ms`)),
          this.connectTimeout,
        );
      });
      try {
        await Promise.race([pending, timeout]);
      } finally {
        clearTimeout(timer);
      }
    }
    return this.client;
  }

  /** EVALSHA, loading the script on the node that lacks it (first use, restart, failover). */
  private async run(lua: Script, keys: string[], args: string[]): Promise<unknown> {
    const redis = await this.redis();
    try {
      return await redis.evalSha(lua.sha1, { keys, arguments: args });
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(lua.source, { keys, arguments: args });
    }
  }

  private key(name: string): string {
    return `${this.prefix}${name}`;
  }

  private sessionKey(id: string): string {
    return `${this.prefix}s:${id}`;
  }

  private userKeys(userId: string): string[] {
    const tag = `${this.prefix}{u:${createHash('sha256').update(userId).digest('base64url')}}`;
    return [`${tag}:live`, `${tag}:age`, `${tag}:evicting`];
  }

  private userKey(id: string): string {
    return `${this.prefix}{users}:id:${id}`;
  }

  private rememberKey(selector: string): string {
    return `${this.prefix}{remember}:t:${selector}`;
  }
}

type Fields = Record<string, string>;

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A flat [field, value, …] array (HGETALL inside Lua) as an object. */
function pairs(reply: unknown): Fields {
  const fields: Fields = {};
  if (!Array.isArray(reply)) return fields;
  for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1]);
  return fields;
}

/** Prefix of the hash fields holding `data`, one per top-level key. */
const DATA_FIELD = 'd:';

/**
 * The `record` field: the record with `data` left empty, and last, for two reasons: a process of
 * an earlier version reads `{}` rather than nothing, and SESSION_UPDATE_DATA tells such a record
 * from one written by an earlier version (data inside) by its ending.
 */
function recordJson(record: Omit<SessionRecord, 'data'>): string {
  const { data: _data, ...rest } = record as SessionRecord;
  return JSON.stringify({ ...rest, data: {} });
}

/** `data` as hash fields: `d:<key>`, JSON of the value, … */
function dataFields(data: JsonObject): string[] {
  const fields: string[] = [];
  for (const [key, value] of Object.entries(data))
    fields.push(`${DATA_FIELD}${key}`, JSON.stringify(value));
  return fields;
}

/** A stored session, or null when absent or unreadable (a corrupt entry is "no session"). */
function sessionFrom(reply: unknown): SessionRecord | null {
  if (!isFields(reply) || typeof reply.record !== 'string') return null;
  try {
    const record = JSON.parse(reply.record) as SessionRecord;
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
    return {
      ...record,
      lastSeenAt: Number(reply.lastSeenAt),
      idleExpiresAt: Number(reply.idleExpiresAt),
      data,
    };
  } catch {
    return null;
  }
}

function userFrom(fields: unknown): UserRecord | null {
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
function rememberFields(record: RememberRecord): string[] {
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

function rememberFrom(fields: unknown): RememberRecord | null {
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
