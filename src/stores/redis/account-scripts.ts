import { script } from './scripts.js';

/**
 * The scripts of the account side of the Redis store: users, login attempts and remember-me
 * tokens, each kind in its own slot (the session scripts are in scripts.ts).
 */

// --- Users live in one slot ({users}) so the username-key reservation is one atomic script, and
// deleting a user (KEYS[3]: their second factors) is one too.

export const USER_CREATE = script(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'username', ARGV[2], 'usernameKey', ARGV[3],
  'passwordHash', ARGV[4], 'createdAt', ARGV[5], 'disabled', ARGV[6])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
return 1`);

export const USER_BY_KEY = script(
  `
local id = redis.call('GET', KEYS[1])
if not id then return {} end
return redis.call('HGETALL', ARGV[1] .. id)`,
  'read',
);

export const USER_LIST = script(
  `
local users = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local user = redis.call('HGETALL', ARGV[1] .. id)
  if #user > 0 then users[#users + 1] = user end
end
return users`,
  'read',
);

export const USER_UPDATE = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'passwordHash', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'disabled', ARGV[2]) end
return 1`);

export const USER_DELETE = script(
  `
local usernameKey = redis.call('HGET', KEYS[1], 'usernameKey')
if not usernameKey then return 0 end
local byKey = ARGV[2] .. usernameKey
if redis.call('GET', byKey) == ARGV[1] then redis.call('DEL', byKey) end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`,
  'delete',
);

// --- Login attempts live in one slot ({throttle}).

/**
 * ThrottleStore.consumeAttempt, in one slot: the wait after the n-th counted attempt is looked up
 * in ARGV[7..] (the rule's `delays`), never computed here. ARGV[6]: the key's expiry floor.
 */
export const ATTEMPT_CONSUME = script(`
local now, windowMs, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local free, floor = tonumber(ARGV[5]), tonumber(ARGV[6])
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
if count >= free then delay = tonumber(ARGV[7 + math.min(count - free, #ARGV - 7)]) or 0 end
nextAllowedAt = now + delay
redis.call('HSET', KEYS[1], 'count', count, 'windowEnd', string.format('%d', windowEnd),
  'nextAllowedAt', string.format('%d', nextAllowedAt))
redis.call('ZADD', KEYS[2], string.format('%d', windowEnd), ARGV[1])
redis.call('PEXPIREAT', KEYS[1], string.format('%d', math.max(windowEnd, nextAllowedAt, floor)))
return {1, count, string.format('%d', now)}`);

export const ATTEMPT_RESET = script(
  `
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])`,
  'delete',
);

/** Deletes a batch of windows ended at ARGV[1]; gives {entries looked at, windows deleted}. */
export const ATTEMPT_SWEEP = script(
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

// --- Remember-me tokens live in one slot ({remember}): rotation writes two tokens atomically.

const REMEMBER_INSERT = `
local function insert(key, userSet, fields, expiresAt, expireAt, selector)
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIREAT', key, expireAt)
  redis.call('SADD', userSet, selector)
  redis.call('ZADD', KEYS[#KEYS], expiresAt, selector)
end
`;

export const REMEMBER_CREATE = script(`${REMEMBER_INSERT}
insert(KEYS[1], KEYS[2], cjson.decode(ARGV[1]), ARGV[2], ARGV[3], ARGV[4])
return 1`);

export const REMEMBER_ROTATE = script(`${REMEMBER_INSERT}
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'replacedBy') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'replacedBy', ARGV[1], 'replacedAt', ARGV[2])
insert(KEYS[2], KEYS[3], cjson.decode(ARGV[3]), ARGV[4], ARGV[5], ARGV[1])
return 1`);

export const REMEMBER_DELETE = script(
  `
local userId = redis.call('HGET', KEYS[1], 'userId')
if not userId then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. userId, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`,
  'delete',
);

export const REMEMBER_DELETE_BY_USER = script(
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

export const REMEMBER_SWEEP = script(
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

// --- Second factors: one hash per user, `{users}:f:<userId>`, in the users' slot so deleting an
// account takes them in the same script. Per factor `<id>`: the kind; `<id>:s` secret, `<id>:n`
// name, `<id>:k` confirmed ('1'/'0'), `<id>:t` createdAt, `<id>:c` counter, `<id>:u` lastUsedAt
// (absent: never). Counters stay strings, compared with tonumber (exact below 2^53).

/** Writes a factor's fields (ARGV: field, value, …). */
export const FACTOR_CREATE = script(`redis.call('HSET', KEYS[1], unpack(ARGV))`);

/** Renames (ARGV[2], '' keeps it) and/or confirms (ARGV[3] '1') factor ARGV[1]; 0 when absent. */
export const FACTOR_UPDATE = script(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], ARGV[1] .. ':n', ARGV[4]) end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], ARGV[1] .. ':k', '1') end
return 1`);

/** Raises factor ARGV[1]'s counter to ARGV[2] (and lastUsedAt to ARGV[3]) when below it. */
export const FACTOR_ADVANCE = script(`
local counter = redis.call('HGET', KEYS[1], ARGV[1] .. ':c')
if not counter or tonumber(counter) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1] .. ':c', ARGV[2], ARGV[1] .. ':u', ARGV[3])
return 1`);

/** Deletes factor ARGV[1]; 1 once. */
export const FACTOR_DELETE = script(
  `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
for _, suffix in ipairs({':s', ':n', ':k', ':t', ':c', ':u'}) do
  redis.call('HDEL', KEYS[1], ARGV[1] .. suffix)
end
return 1`,
  'delete',
);

/** Deletes the factors of kind ARGV[1] ('' for all); gives how many. */
export const FACTOR_DELETE_KIND = script(
  `
local fields = redis.call('HGETALL', KEYS[1])
local count = 0
for i = 1, #fields, 2 do
  local id, kind = fields[i], fields[i + 1]
  if not string.find(id, ':', 1, true) and (ARGV[1] == '' or kind == ARGV[1]) then
    count = count + 1
    for _, suffix in ipairs({'', ':s', ':n', ':k', ':t', ':c', ':u'}) do
      redis.call('HDEL', KEYS[1], id .. suffix)
    end
  end
end
return count`,
  'delete',
);
