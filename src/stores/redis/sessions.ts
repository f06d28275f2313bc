import { createHash } from 'node:crypto';
import type {
  DataChange,
  DataUpdate,
  ExpirySweep,
  SessionDataPatch,
  SessionIndex,
} from '../../core/capabilities.js';
import type { SessionRecord, SessionStore } from '../../core/store.js';
import type { ValidationCache } from './cache.js';
import { type Keyspace, SWEEP_BATCH } from './connection.js';
import {
  DATA_FIELD,
  dataFields,
  expireAtFor,
  recordJson,
  sessionFields,
  sessionFrom,
} from './records.js';
import {
  INDEX_ADD,
  INDEX_HAS,
  INDEX_MEMBERS,
  INDEX_REMOVE,
  INDEX_TAKE,
  INDEX_TOUCH,
  SESSION_CONVERT,
  SESSION_CREATE,
  SESSION_DELETE,
  SESSION_DELETE_IF_DEAD,
  SESSION_TOUCH,
  SESSION_UPDATE_DATA,
  SESSION_WRITE,
  ZADD,
  ZADD_RAISE,
  ZRANGE_UNTIL,
  ZREM,
} from './scripts.js';

/**
 * Sessions, their per-user index and the expiry index (the key layout is on `RedisStore`).
 *
 * Creation is atomic with the index: on one Redis server one script writes both. On Redis Cluster
 * the record's slot is not the user's, so it is three steps (index entry, record, check the entry
 * is still there), and revoke-all takes entries out of the index BEFORE deleting their records:
 * a create whose entry a revoke-all took deletes its own record, so either way none survives.
 */
export class RedisSessions
  implements Omit<SessionStore, 'close'>, SessionIndex, SessionDataPatch, ExpirySweep
{
  private readonly prefix: string;
  /** Redis Cluster: a session's key and its user's index are in different slots. */
  private readonly cluster: boolean;

  constructor(
    private readonly redis: Keyspace,
    private readonly cache: ValidationCache | null,
  ) {
    this.prefix = redis.prefix;
    this.cluster = 'masters' in redis.client;
  }

  async create(record: SessionRecord): Promise<void> {
    await this.insert(record, '');
  }

  async createCapped(record: SessionRecord, max: number): Promise<boolean> {
    return this.insert(record, String(max));
  }

  /** The hot path: one HGETALL, or a cache hit that sends no command and decodes nothing. */
  async get(id: string): Promise<SessionRecord | null> {
    const redis = await this.redis.connected();
    const cache = this.cache;
    if (cache?.active) {
      // Redis writes an invalidation to every caching connection before it answers the writer, so
      // it is already in our socket when a request that follows the write arrives. One turn of the
      // event loop lets node-redis read it before the cache is consulted.
      await new Promise((resolve) => setImmediate(resolve));
      const key = this.sessionKey(id);
      const decoded = cache.decodedSession(key);
      if (decoded !== undefined) return withId(decoded, id);
      const record = sessionFrom(await redis.hGetAll(key));
      cache.decodeSession(key);
      return withId(record, id);
    }
    return withId(sessionFrom(await redis.hGetAll(this.sessionKey(id))), id);
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    const current = await this.get(id);
    if (!current) return;
    const idle = String(idleExpiresAt);
    const expireAt = expireAtFor(idleExpiresAt);
    // Index first: if a later step fails, the index errs on keeping the session, never on losing it.
    await this.redis.run(INDEX_TOUCH, this.userKeys(current.userId), [id, idle, expireAt]);
    await this.redis.run(
      SESSION_TOUCH,
      [this.sessionKey(id)],
      [String(lastSeenAt), idle, expireAt],
    );
    await this.redis.run(ZADD_RAISE, [this.redis.key('expiries')], [idle, id]);
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
      const [state, older] = (await this.redis.run(SESSION_UPDATE_DATA, [key], args)) as [
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
      await this.redis.run(
        SESSION_CONVERT,
        [key],
        [older, recordJson(rest), ...dataFields(data ?? {})],
      );
    }
  }

  async delete(id: string): Promise<boolean> {
    const userId = await this.redis.run(SESSION_DELETE, [this.sessionKey(id)], []);
    if (typeof userId !== 'string') return false;
    await Promise.all([
      this.redis.run(INDEX_REMOVE, this.userKeys(userId), [id]),
      this.redis.run(ZREM, [this.redis.key('expiries')], [id]),
    ]);
    return true;
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    const [listed, earlier] = (await this.redis.run(INDEX_MEMBERS, this.userKeys(userId), [])) as [
      string[],
      string[],
      string[],
    ];
    const ids = [...listed, ...earlier];
    const redis = await this.redis.connected();
    const records = await Promise.all(
      ids.map(async (id) => withId(sessionFrom(await redis.hGetAll(this.sessionKey(id))), id)),
    );
    const gone = ids.filter((_, i) => records[i] === null);
    // Ids whose record expired (Redis TTL) leave the index here.
    if (gone.length > 0) await this.redis.run(INDEX_REMOVE, this.userKeys(userId), gone);
    return records
      .filter((r): r is SessionRecord => r !== null && r.idleExpiresAt > now)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    const userKeys = this.userKeys(userId);
    // Out of the index first (into `evicting`, which the next revoke-all still sees), then the
    // records, then `evicting`: a create racing this either is taken here or checks and yields.
    const ids = (await this.redis.run(INDEX_TAKE, userKeys, [exceptId ?? ''])) as string[];
    if (ids.length === 0) return 0;
    const deleted = await this.deleteRecords(ids);
    await this.redis.run(INDEX_REMOVE, userKeys, ids);
    return deleted;
  }

  async deleteExpired(now: number): Promise<number> {
    const expiries = this.redis.key('expiries');
    let total = 0;
    for (;;) {
      const ids = (await this.redis.run(
        ZRANGE_UNTIL,
        [expiries],
        [String(now), String(SWEEP_BATCH)],
      )) as string[];
      if (ids.length === 0) return total;
      const outcomes = await Promise.all(
        ids.map(async (id) => {
          const reply = await this.redis.run(
            SESSION_DELETE_IF_DEAD,
            [this.sessionKey(id)],
            [String(now)],
          );
          const [state, detail] = reply as [number, string?];
          if (state === 2 && detail !== undefined) {
            // Still alive (a touch raced the expiry index): move its entry to the real deadline.
            await this.redis.run(ZADD, [expiries], [detail, id]);
            return 0;
          }
          await this.redis.run(ZREM, [expiries], [id]);
          if (state === 1 && detail !== undefined) {
            await this.redis.run(INDEX_REMOVE, this.userKeys(detail), [id]);
            return 1;
          }
          return 0;
        }),
      );
      total += outcomes.reduce<number>((sum, n) => sum + n, 0);
    }
  }

  /**
   * Writes the record and indexes it unless its user already holds `max` sessions (empty: no
   * cap), decided atomically in the user's slot; at the cap nothing is written.
   */
  private async insert(record: SessionRecord, max: string): Promise<boolean> {
    const expireAt = expireAtFor(record.idleExpiresAt);
    const userKeys = this.userKeys(record.userId);
    const sessionKey = this.sessionKey(record.id);
    const indexArgs = [
      record.id,
      String(record.createdAt),
      String(record.idleExpiresAt),
      max,
      expireAt,
    ];
    const fields = sessionFields(record);
    let reply: unknown;
    const expiries = this.redis.key('expiries');
    if (this.cluster) {
      reply = await this.redis.run(INDEX_ADD, userKeys, indexArgs);
      if ((reply as [number])[0] === 1) {
        await Promise.all([
          this.redis.run(SESSION_WRITE, [sessionKey], [expireAt, ...fields]),
          this.redis.run(ZADD, [expiries], [String(record.idleExpiresAt), record.id]),
        ]);
        const [index] = userKeys as [string];
        if ((await this.redis.run(INDEX_HAS, [index], [record.id])) !== 1) {
          // A revoke-all took the entry before the record was written: it must not survive.
          await this.deleteRecords([record.id]);
        }
      }
    } else {
      reply = await this.redis.run(
        SESSION_CREATE,
        [sessionKey, ...userKeys, expiries],
        [...indexArgs, ...fields],
      );
    }
    const [indexed, unfinished] = reply as [number, string[]];
    if (indexed === 0) return false;
    // Evictions an earlier version (or a revoke-all) left half-done: their records go, then their entries.
    const others = unfinished.filter((id) => id !== record.id);
    if (others.length > 0) {
      await this.deleteRecords(others);
      await this.redis.run(INDEX_REMOVE, userKeys, others);
    }
    return true;
  }

  /** Deletes session records (each in its own slot) and their expiry entries; gives how many existed. */
  private async deleteRecords(ids: readonly string[]): Promise<number> {
    const deleted = await Promise.all(
      ids.map((id) => this.redis.run(SESSION_DELETE, [this.sessionKey(id)], [])),
    );
    await this.redis.run(ZREM, [this.redis.key('expiries')], [...ids]);
    return deleted.filter((userId) => typeof userId === 'string').length;
  }

  private sessionKey(id: string): string {
    return `${this.prefix}s:${id}`;
  }

  /** The user's index, an earlier version's (`live`, `age`), and `evicting`: all in one slot. */
  private userKeys(userId: string): string[] {
    const tag = `${this.prefix}{u:${createHash('sha256').update(userId).digest('base64url')}}`;
    return [`${tag}:i`, `${tag}:live`, `${tag}:age`, `${tag}:evicting`];
  }
}

/** A decoded compact record gets its id from its key (earlier layouts stored the same id). */
function withId(record: SessionRecord | null, id: string): SessionRecord | null {
  // Freshly decoded or copied for this caller, so ours to complete (no second copy on the hot path).
  if (record !== null) (record as { id: string }).id = id;
  return record;
}
