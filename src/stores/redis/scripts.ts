import { createHash } from 'node:crypto';
import type { RedisConnection } from './connection.js';

// Every Lua script the store runs, and the one place that runs them. Each script touches the keys
// of ONE hash slot (see the key layout on RedisStore), so each step is atomic on Redis Cluster.

export interface Script {
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

/** A Lua script with its SHA-1, flagged for what it may do (Redis 7 shebang flags). */
export function script(body: string, kind: ScriptKind = 'write'): Script {
  const source = `${SHEBANG[kind]}\n${body}`;
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/** EVALSHA, loading the script on the node that lacks it (first use, restart, failover). */
export async function runScript(
  redis: RedisConnection,
  lua: Script,
  keys: string[],
  args: string[],
): Promise<unknown> {
  try {
    return await redis.evalSha(lua.sha1, { keys, arguments: args });
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(lua.source, { keys, arguments: args });
  }
}

/** Extends a key's expiry to `at`, never shortening it (PEXPIREAT GT ignores keys without one). */
const EXTEND = `
local function extend(key, at)
  local current = redis.call('PEXPIRETIME', key)
  if current >= 0 and current >= tonumber(at) then return end
  if current ~= -2 then redis.call('PEXPIREAT', key, at) end
end
`;

// --- Sessions: one hash per session, `s:<id>`, in its own slot (compact fields, see records.ts;
// a hash with a `record` field is in the layout of earlier versions, still read and updated).
// --- The per-user index: `{u:<sha256(userId)>}:i`, id → idleExpiresAt, in the user's slot, and
// beside it `:evicting`, ids a revoke-all (or an earlier version's eviction) has taken out of the
// index but not deleted yet. `:live` and `:age` are the index of earlier versions, still honoured.

/** Drops the user's entries dead at ARGV[2] (createdAt), then gives {0} at the cap ARGV[3] (empty: none). */
const INDEX_PRUNE = `${EXTEND}
local function prune(index, live, age, createdAt, max)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', createdAt)
  for _, dead in ipairs(redis.call('ZRANGE', live, '-inf', createdAt, 'BYSCORE')) do
    redis.call('ZREM', live, dead)
    redis.call('ZREM', age, dead)
  end
  return max and redis.call('ZCARD', index) + redis.call('ZCARD', age) >= max
end
`;

/** The whole record: DEL, HSET of its fields, PEXPIREAT. */
const WRITE_RECORD = `
local function write(key, expireAt, first)
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(ARGV, first))
  redis.call('PEXPIREAT', key, expireAt)
end
`;

/**
 * Creation on one Redis server: the record and its index entry in one script, so a revoke-all
 * sees either both or neither. KEYS: the session, the user's index, live, age, evicting, then
 * \`expiries\`.
 * ARGV: id, createdAt, idleExpiresAt, cap (empty: none), expireAt, then the record's fields.
 * Gives {1, ids in \`evicting\`} or {0, {}} at the cap (nothing written).
 */
export const SESSION_CREATE = script(`${INDEX_PRUNE}${WRITE_RECORD}
local id, createdAt, idle, max, expireAt = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
if prune(KEYS[2], KEYS[3], KEYS[4], createdAt, max) then return {0, {}} end
write(KEYS[1], expireAt, 6)
redis.call('ZADD', KEYS[2], idle, id)
extend(KEYS[2], expireAt)
redis.call('ZADD', KEYS[6], idle, id)
return {1, redis.call('SMEMBERS', KEYS[5])}`);

/**
 * Creation on Redis Cluster, step 1 of 3 (the record is in another slot): the index entry, under
 * the cap. KEYS: the user's index, live, age, evicting; ARGV as SESSION_CREATE's first five.
 */
export const INDEX_ADD = script(`${INDEX_PRUNE}
local id, createdAt, idle, max, expireAt = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
if prune(KEYS[1], KEYS[2], KEYS[3], createdAt, max) then return {0, {}} end
redis.call('ZADD', KEYS[1], idle, id)
extend(KEYS[1], expireAt)
return {1, redis.call('SMEMBERS', KEYS[4])}`);

/** Cluster creation, step 2: the record (its expiry entry is a ZADD beside). ARGV: expireAt, then its fields. */
export const SESSION_WRITE = script(`${WRITE_RECORD}
write(KEYS[1], ARGV[1], 2)
return 1`);

/** Cluster creation, step 3: 1 while the id is still indexed (no revoke-all took it meanwhile). */
export const INDEX_HAS = script(`return redis.call('ZSCORE', KEYS[1], ARGV[1]) and 1 or 0`, 'read');

/**
 * SessionDataPatch.updateData on the record's own hash: HDELs and HSETs \`d:<key>\` fields, never
 * reading or re-encoding a JSON value (so \`[]\`, numbers and strings stay byte for byte). ARGV:
 * number of removals, maxBytes, the \`d:\` names to remove, then name/value pairs to set.
 * Gives {1} done, {0} no record, {-1} too large, or {2, record} for a record written before data
 * had fields of its own (its data still inside \`record\`): converted by SESSION_CONVERT first.
 */
export const SESSION_UPDATE_DATA = script(`
local record = redis.call('HGET', KEYS[1], 'record')
if record then
  if string.sub(record, -10) ~= '"data":{}}' then return {2, record} end
elseif redis.call('HEXISTS', KEYS[1], 'u') == 0 then return {0} end
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
export const SESSION_CONVERT = script(`
if redis.call('HGET', KEYS[1], 'record') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1`);

/** New live times, in the record's own layout's field names. */
export const SESSION_TOUCH = script(`
if redis.call('HEXISTS', KEYS[1], 'u') == 1 then
  redis.call('HSET', KEYS[1], 'l', ARGV[1], 'i', ARGV[2])
elseif redis.call('HEXISTS', KEYS[1], 'record') == 1 then
  redis.call('HSET', KEYS[1], 'lastSeenAt', ARGV[1], 'idleExpiresAt', ARGV[2])
else
  return 0
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1`);

/** Gives the deleted record's user id, or nil when there was none. */
export const SESSION_DELETE = script(
  `
local userId = redis.call('HGET', KEYS[1], 'u') or redis.call('HGET', KEYS[1], 'userId')
if not userId then return nil end
redis.call('DEL', KEYS[1])
return userId`,
  'delete',
);

/** Raises a listed session's deadline; a session no longer listed (deleted) stays out. */
export const INDEX_TOUCH = script(`${EXTEND}
local listed = false
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  if redis.call('ZSCORE', key, ARGV[1]) then
    redis.call('ZADD', key, 'GT', ARGV[2], ARGV[1])
    listed = true
  end
end
if not listed then return 0 end
for _, key in ipairs(KEYS) do extend(key, ARGV[3]) end
return 1`);

export const INDEX_REMOVE = script(
  `
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
  redis.call('SREM', KEYS[4], ARGV[i])
end
return #ARGV`,
  'delete',
);

/** Every listed id (this version's index, then an earlier version's), and those in \`evicting\`. */
export const INDEX_MEMBERS = script(
  `
return {redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('ZRANGE', KEYS[3], 0, -1),
  redis.call('SMEMBERS', KEYS[4])}`,
  'read',
);

/**
 * Revoke-all, step 1: moves every listed id but ARGV[1] into \`evicting\` and gives all of
 * \`evicting\` but ARGV[1]. A create whose entry was taken deletes its own record (INDEX_HAS), and
 * ids taken stay visible to the next revoke-all until their records are deleted.
 */
export const INDEX_TAKE = script(
  `
local except = ARGV[1]
for _, key in ipairs({KEYS[1], KEYS[3]}) do
  for _, id in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if id ~= except then
      redis.call('SADD', KEYS[4], id)
      redis.call('ZREM', key, id)
      redis.call('ZREM', KEYS[2], id)
    end
  end
end
local taken = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if id ~= except then taken[#taken + 1] = id end
end
return taken`,
  'delete',
);

/** Sweep step for one record: 1 deleted (dead at ARGV[1]), 0 gone already, else its live deadline. */
export const SESSION_DELETE_IF_DEAD = script(
  `
local idle = redis.call('HGET', KEYS[1], 'i') or redis.call('HGET', KEYS[1], 'idleExpiresAt')
if not idle then return {0} end
if tonumber(idle) > tonumber(ARGV[1]) then return {2, idle} end
local userId = redis.call('HGET', KEYS[1], 'u') or redis.call('HGET', KEYS[1], 'userId')
redis.call('DEL', KEYS[1])
return {1, userId}`,
  'delete',
);

// --- `expiries`: id → idleExpiresAt, for the sweep (Redis' own TTL does the real expiring).

export const ZADD = script(`return redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])`);
export const ZADD_RAISE = script(
  `return redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[1], ARGV[2])`,
);
export const ZREM = script(
  `
for i = 1, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
return #ARGV`,
  'delete',
);
export const ZRANGE_UNTIL = script(
  `return redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])`,
  'read',
);
