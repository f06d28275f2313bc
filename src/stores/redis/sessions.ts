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
import { DATA_FIELD, dataFields, expireAtFor, recordJson, sessionFrom } from './records.js';
import {
  INDEX_ADD,
  INDEX_MEMBERS,
  INDEX_REMOVE,
  INDEX_TOUCH,
  SESSION_CONVERT,
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
 * A session key and its user's index are in different slots, so no one script can write both:
 * the record is written BEFORE it is indexed and deleted BEFORE it leaves the index, so the index
 * never names a record that was never written and never forgets one that lives.
 */
export class RedisSessions
  implements Omit<SessionStore, 'close'>, SessionIndex, SessionDataPatch, ExpirySweep
{
  private readonly prefix: string;

  constructor(
    private readonly redis: Keyspace,
    private readonly cache: ValidationCache | null,
  ) {
    this.prefix = redis.prefix;
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
    const [listed] = (await this.redis.run(INDEX_MEMBERS, this.userKeys(userId), [])) as [
      string[],
      string[],
    ];
    const redis = await this.redis.connected();
    const records = await Promise.all(
      listed.map(async (id) => sessionFrom(await redis.hGetAll(this.sessionKey(id)))),
    );
    const gone = listed.filter((_, i) => records[i] === null);
    // Ids whose record expired (Redis TTL) leave the index here.
    if (gone.length > 0) await this.redis.run(INDEX_REMOVE, this.userKeys(userId), gone);
    return records
      .filter((r): r is SessionRecord => r !== null && r.idleExpiresAt > now)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    const [listed, evicting] = (await this.redis.run(INDEX_MEMBERS, this.userKeys(userId), [])) as [
      string[],
      string[],
    ];
    const ids = [...new Set([...listed, ...evicting])].filter((id) => id !== exceptId);
    if (ids.length === 0) return 0;
    // Records first: if this fails half-way, the index still names what is left to revoke.
    const deleted = await this.deleteRecords(ids);
    await this.redis.run(INDEX_REMOVE, this.userKeys(userId), ids);
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
   * Writes the record, then indexes it unless its user already holds `max` sessions (empty: no
   * cap), which is decided atomically in the user's slot; a refused record is deleted again.
   */
  private async insert(record: SessionRecord, max: string): Promise<boolean> {
    const idle = String(record.idleExpiresAt);
    const expireAt = expireAtFor(record.idleExpiresAt);
    // Nobody holds the token yet, so the record may exist a moment before it is indexed.
    await Promise.all([
      this.redis.run(
        SESSION_WRITE,
        [this.sessionKey(record.id)],
        [
          recordJson(record),
          record.userId,
          String(record.lastSeenAt),
          idle,
          expireAt,
          ...dataFields(record.data),
        ],
      ),
      this.redis.run(ZADD, [this.redis.key('expiries')], [idle, record.id]),
    ]);
    const userKeys = this.userKeys(record.userId);
    const reply = await this.redis.run(INDEX_ADD, userKeys, [
      record.id,
      String(record.createdAt),
      idle,
      max,
      expireAt,
    ]);
    const [indexed, unfinished] = reply as [number, string[]];
    if (indexed === 0) {
      await this.deleteRecords([record.id]);
      return false;
    }
    // Evictions an earlier version left half-done: their records go, then their index entries.
    if (unfinished.length > 0) {
      await this.deleteRecords(unfinished);
      await this.redis.run(INDEX_REMOVE, userKeys, unfinished);
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

  private userKeys(userId: string): string[] {
    const tag = `${this.prefix}{u:${createHash('sha256').update(userId).digest('base64url')}}`;
    return [`${tag}:live`, `${tag}:age`, `${tag}:evicting`];
  }
}
