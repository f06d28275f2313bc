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
// --- The index: one hash per bucket of users, `{i:<bucket>}`, field <user tag><id> → idleExpiresAt,
// and beside it `{i:<bucket>}:e`, the entries a revoke-all has taken out but not deleted yet. A
// user's entries are those whose field starts with the user's tag (ARGV), all in one slot.
// --- Earlier versions' per-user index `{u:<sha256(userId)>}:i` (`:live`/`:age` before it) and
// `:evicting`: still listed, counted against the cap, touched and revoked, never written anew.

/** Redis' own clock, in ms. */
const CLOCK = `
local function clock()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
`;

/**
 * Prunes the bucket, and gives how many of the user's entries are left: its entries dead at
 * createdAt (the caller's clock, as the cap counts), other users' once dead a linger (ARGV) ago by
 * Redis' clock, whose records Redis has expired (no caller, whatever its clock, sees them any
 * more). A capped create reads the whole bucket, to count; an uncapped one only a few random
 * fields, so a user with thousands of sessions does not make each create read them all: dead
 * entries stay a small share of a bucket all the same (and the sweep takes the rest).
 */
const BUCKET_PRUNE = `${CLOCK}
local PRUNE_SAMPLE = 8
local function prune(bucket, tag, createdAt, linger, whole)
  local others = clock() - linger
  local fields
  if whole then fields = redis.call('HGETALL', bucket)
  else fields = redis.call('HRANDFIELD', bucket, PRUNE_SAMPLE, 'WITHVALUES') end
  local mine = 0
  for i = 1, #fields, 2 do
    local at = tonumber(fields[i + 1])
    if string.sub(fields[i], 1, #tag) == tag then
      if at <= createdAt then redis.call('HDEL', bucket, fields[i]) else mine = mine + 1 end
    elseif at <= others then
      redis.call('HDEL', bucket, fields[i])
    end
  end
  return mine
end

local function evicting(key, tag)
  local ids = {}
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, #tag) == tag then ids[#ids + 1] = string.sub(field, #tag + 1) end
  end
  return ids
end
`;

/** An earlier version's index for the user, pruned at createdAt: {sessions it still holds, ids it was evicting}. */
const LEGACY_PRUNE = `
local function legacy(index, live, age, evicting, createdAt)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', createdAt)
  for _, dead in ipairs(redis.call('ZRANGE', live, '-inf', createdAt, 'BYSCORE')) do
    redis.call('ZREM', live, dead)
    redis.call('ZREM', age, dead)
  end
  return {redis.call('ZCARD', index) + redis.call('ZCARD', age), redis.call('SMEMBERS', evicting)}
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
 * sees either both or neither. KEYS: the session, the bucket, its \`:e\`, then the user's index of
 * an earlier version (index, live, age, evicting).
 * ARGV: id, createdAt, idleExpiresAt, cap (empty: none), expireAt, tag, linger, then the record's fields.
 * Gives {1, ids being evicted} or {0, {}} at the cap (nothing written).
 */
export const SESSION_CREATE = script(`${EXTEND}${BUCKET_PRUNE}${LEGACY_PRUNE}${WRITE_RECORD}
local id, createdAt, idle, max, expireAt, tag = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local mine = prune(KEYS[2], tag, createdAt, tonumber(ARGV[7]), max)
local earlier = legacy(KEYS[4], KEYS[5], KEYS[6], KEYS[7], createdAt)
if max and mine + earlier[1] >= max then return {0, {}} end
write(KEYS[1], expireAt, 8)
redis.call('HSET', KEYS[2], tag .. id, idle)
extend(KEYS[2], expireAt)
local ids = evicting(KEYS[3], tag)
for _, other in ipairs(earlier[2]) do ids[#ids + 1] = other end
return {1, ids}`);

/**
 * Creation on Redis Cluster, step 1 of 3 (the record is in another slot): the index entry, under
 * the cap. KEYS: the bucket, its \`:e\`; ARGV as SESSION_CREATE's first seven, then how many
 * sessions the user's earlier-version index holds (LEGACY_COUNT).
 */
export const INDEX_ADD = script(`${EXTEND}${BUCKET_PRUNE}
local id, createdAt, idle, max, expireAt, tag = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local mine = prune(KEYS[1], tag, createdAt, tonumber(ARGV[7]), max)
if max and mine + tonumber(ARGV[8]) >= max then return {0, {}} end
redis.call('HSET', KEYS[1], tag .. id, idle)
extend(KEYS[1], expireAt)
return {1, evicting(KEYS[2], tag)}`);

/**
 * Cluster, before a capped create: the user's earlier-version index pruned at ARGV[1] (createdAt).
 * KEYS: index, live, age, evicting. Gives {sessions it holds, ids it was evicting}.
 */
export const LEGACY_COUNT = script(`${LEGACY_PRUNE}
return legacy(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])`);

/** Cluster creation, step 2: the record. ARGV: expireAt, then its fields. */
export const SESSION_WRITE = script(`${WRITE_RECORD}
write(KEYS[1], ARGV[1], 2)
return 1`);

/** Cluster creation, step 3: 1 while the entry (ARGV[1]) is still in the bucket (no revoke-all took it). */
export const INDEX_HAS = script(`return redis.call('HEXISTS', KEYS[1], ARGV[1])`, 'read');

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

/**
 * New live times, in the record's own layout: ARGV lastSeenAt, idleExpiresAt, expireAt, then the
 * same two times as offsets from createdAt (ARGV[6]); a record of another createdAt is left alone.
 */
export const SESSION_TOUCH = script(`
if redis.call('HEXISTS', KEYS[1], 'e') == 1 then
  if redis.call('HGET', KEYS[1], 'c') ~= ARGV[6] then return 0 end
  redis.call('HSET', KEYS[1], 's', ARGV[4], 'e', ARGV[5])
elseif redis.call('HEXISTS', KEYS[1], 'u') == 1 then
  redis.call('HSET', KEYS[1], 'l', ARGV[1], 'i', ARGV[2])
elseif redis.call('HEXISTS', KEYS[1], 'record') == 1 then
  redis.call('HSET', KEYS[1], 'lastSeenAt', ARGV[1], 'idleExpiresAt', ARGV[2])
else
  return 0
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1`);

/** Gives the deleted record's user id, or nil when there was none (or, ARGV[1] given, of another user). */
export const SESSION_DELETE = script(
  `
local userId = redis.call('HGET', KEYS[1], 'u') or redis.call('HGET', KEYS[1], 'userId')
if not userId or (ARGV[1] and ARGV[1] ~= userId) then return nil end
redis.call('DEL', KEYS[1])
return userId`,
  'delete',
);

/** Raises the bucket entry ARGV[1] to ARGV[2]; an entry no longer there (deleted, taken) stays out. */
export const INDEX_TOUCH = script(`${EXTEND}
local at = redis.call('HGET', KEYS[1], ARGV[1])
if not at then return 0 end
if tonumber(ARGV[2]) > tonumber(at) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
extend(KEYS[1], ARGV[3])
return 1`);

/** An earlier version's index: raises a listed session's deadline; one no longer listed stays out. */
export const LEGACY_TOUCH = script(`${EXTEND}
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

/** Takes entries (ARGV: fields) out of the bucket and its \`:e\`. */
export const INDEX_REMOVE = script(
  `
for i = 1, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
end
return #ARGV`,
  'delete',
);

/** Takes ids (ARGV) out of an earlier version's index. */
export const LEGACY_REMOVE = script(
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

/** The ids of the user's (tag ARGV[1]) entries in the bucket. */
export const INDEX_MEMBERS = script(
  `
local ids = {}
local fields = redis.call('HKEYS', KEYS[1])
for _, field in ipairs(fields) do
  if string.sub(field, 1, #ARGV[1]) == ARGV[1] then ids[#ids + 1] = string.sub(field, #ARGV[1] + 1) end
end
return ids`,
  'read',
);

/** Every id an earlier version's index lists. */
export const LEGACY_MEMBERS = script(
  `return {redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('ZRANGE', KEYS[3], 0, -1)}`,
  'read',
);

/**
 * Revoke-all, step 1: moves the user's (tag ARGV[1]) entries but the id ARGV[2] from the bucket
 * into \`:e\` and gives the ids of all the user's entries there but ARGV[2]. A create whose entry
 * was taken deletes its own record (INDEX_HAS), and entries taken stay visible to the next
 * revoke-all and create until their records are deleted.
 */
export const INDEX_TAKE = script(
  `
local tag, except = ARGV[1], ARGV[1] .. ARGV[2]
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, #tag) == tag and fields[i] ~= except then
    redis.call('HSET', KEYS[2], fields[i], fields[i + 1])
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
local at = redis.call('PEXPIRETIME', KEYS[1])
if at > 0 then redis.call('PEXPIREAT', KEYS[2], at) end
local taken = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(field, 1, #tag) == tag and field ~= except then taken[#taken + 1] = string.sub(field, #tag + 1) end
end
return taken`,
  'delete',
);

/** An earlier version's revoke-all, step 1, on its index: as INDEX_TAKE, except ARGV[1]. */
export const LEGACY_TAKE = script(
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

/** Sweep: up to ARGV[2] fields of the bucket whose deadline has passed at ARGV[1]. */
export const INDEX_DEAD = script(
  `
local dead = {}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if #dead >= tonumber(ARGV[2]) then break end
  if tonumber(fields[i + 1]) <= tonumber(ARGV[1]) then dead[#dead + 1] = fields[i] end
end
return dead`,
  'read',
);

/** Sweep step for one record: {1, userId} deleted (dead at ARGV[1]), {0} gone already, {2} alive. */
export const SESSION_DELETE_IF_DEAD = script(
  `
local f = redis.call('HMGET', KEYS[1], 'c', 'e', 'i', 'idleExpiresAt')
local idle
if f[2] then idle = tonumber(f[1]) + tonumber(f[2]) else idle = tonumber(f[3] or f[4]) end
if not idle then return {0} end
if idle > tonumber(ARGV[1]) then return {2} end
local userId = redis.call('HGET', KEYS[1], 'u') or redis.call('HGET', KEYS[1], 'userId')
redis.call('DEL', KEYS[1])
return {1, userId}`,
  'delete',
);

// --- `expiries`: an earlier version's id → idleExpiresAt for the sweep, which drains it.

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
