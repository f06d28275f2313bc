import { createHash } from 'node:crypto';
import type {
  DataChange,
  DataUpdate,
  ExpirySweep,
  SessionDataPatch,
  SessionIndex,
} from '../../core/capabilities.js';
import type { SessionRecord, SessionStore } from '../../core/store.js';
import { nextTurn } from '../next-turn.js';
import type { ValidationCache } from './cache.js';
import { type Keyspace, SWEEP_BATCH } from './connection.js';
import {
  DATA_FIELD,
  dataFields,
  expireAtFor,
  LINGER_MS,
  recordJson,
  sessionFields,
  sessionFrom,
} from './records.js';
import {
  INDEX_ADD,
  INDEX_DEAD,
  INDEX_HAS,
  INDEX_MEMBERS,
  INDEX_REMOVE,
  INDEX_TAKE,
  INDEX_TOUCH,
  LEGACY_COUNT,
  LEGACY_MEMBERS,
  LEGACY_REMOVE,
  LEGACY_TAKE,
  LEGACY_TOUCH,
  SESSION_CONVERT,
  SESSION_CREATE,
  SESSION_DELETE,
  SESSION_DELETE_IF_DEAD,
  SESSION_TOUCH,
  SESSION_UPDATE_DATA,
  SESSION_WRITE,
  ZRANGE_UNTIL,
  ZREM,
} from './scripts.js';

/**
 * Index buckets: users are spread over this many hashes by their sha256, so a user with one
 * session costs one field, not one key (at 1,000,000 sessions about 61 fields a bucket, well under
 * the 512 that keep a hash a listpack).
 */
export const INDEX_BUCKETS = 16_384;

/** How many buckets the sweep reads at once. */
const SWEEP_PARALLEL = 256;

/** Where a user's entries are: the bucket's keys and the tag their fields start with. */
interface UserIndex {
  /** The bucket and its `:e` (entries a revoke-all took but has not finished): one slot. */
  readonly keys: [string, string];
  /** 12 base64url characters (72 bits of sha256(userId) the bucket number does not use). */
  readonly tag: string;
  /** An earlier version's per-user index: index, live, age, evicting (one slot, not the bucket's). */
  readonly legacy: string[];
}

/**
 * Sessions and their index (the key layout is on `RedisStore`).
 *
 * Creation is atomic with the index: on one Redis server one script writes both. On Redis Cluster
 * the record's slot is not the bucket's, so it is three steps (index entry, record, check the entry
 * is still there), and revoke-all takes entries out of the index BEFORE deleting their records:
 * a create whose entry a revoke-all took deletes its own record, so either way none survives.
 */
export class RedisSessions
  implements Omit<SessionStore, 'close'>, SessionIndex, SessionDataPatch, ExpirySweep
{
  private readonly prefix: string;
  /** Redis Cluster: a session's key and its user's bucket are in different slots. */
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
    const redis = this.redis.ready ?? (await this.redis.connected());
    const cache = this.cache;
    if (cache?.active) {
      // Redis writes an invalidation to every caching connection before it answers the writer, so
      // it is already in our socket when a request that follows the write arrives. One turn of the
      // event loop lets node-redis read it before the cache is consulted.
      await nextTurn();
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
    const index = this.userIndex(current.userId);
    // Index first: if a later step fails, the index errs on keeping the session, never on losing it.
    const args = [index.tag + id, idle, expireAt];
    if ((await this.redis.run(INDEX_TOUCH, index.keys, args)) !== 1) {
      await this.redis.run(LEGACY_TOUCH, index.legacy, [id, idle, expireAt]);
    }
    const { createdAt } = current;
    await this.redis.run(
      SESSION_TOUCH,
      [this.sessionKey(id)],
      [
        String(lastSeenAt),
        idle,
        expireAt,
        String(lastSeenAt - createdAt),
        String(idleExpiresAt - createdAt),
        String(createdAt),
      ],
    );
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
    await this.forget(this.userIndex(userId), [id]);
    return true;
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    const index = this.userIndex(userId);
    const [listed, [earlier, older]] = (await Promise.all([
      this.redis.run(INDEX_MEMBERS, index.keys, [index.tag]),
      this.redis.run(LEGACY_MEMBERS, index.legacy, []),
    ])) as [string[], [string[], string[]]];
    const ids = [...new Set([...listed, ...earlier, ...older])];
    const redis = await this.redis.connected();
    const records = await Promise.all(
      ids.map(async (id) => withId(sessionFrom(await redis.hGetAll(this.sessionKey(id))), id)),
    );
    const gone = ids.filter((_, i) => records[i] === null);
    // Ids whose record expired (Redis TTL) leave the index here.
    if (gone.length > 0) await this.forget(index, gone);
    return records
      .filter(
        // Another user's session, should two users' tags ever meet in a bucket, is never theirs.
        (r): r is SessionRecord => r !== null && r.userId === userId && r.idleExpiresAt > now,
      )
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    const index = this.userIndex(userId);
    const except = exceptId ?? '';
    // Out of the index first (into `:e`/`evicting`, which the next revoke-all still sees), then the
    // records, then those entries: a create racing this either is taken here or checks and yields.
    const [taken, earlier] = (await Promise.all([
      this.redis.run(INDEX_TAKE, index.keys, [index.tag, except]),
      this.redis.run(LEGACY_TAKE, index.legacy, [except]),
    ])) as [string[], string[]];
    const ids = [...new Set([...taken, ...earlier])];
    if (ids.length === 0) return 0;
    const deleted = await this.deleteRecords(userId, ids);
    await this.forget(index, ids);
    return deleted;
  }

  /**
   * Redis' TTL expires the records themselves (a minute after their deadline, see LINGER_MS): the
   * sweep deletes those dead at `now` sooner and takes their entries out of every bucket, then
   * drains the `expiries` set an earlier version kept. Reads all 16,384 buckets, 256 at a time.
   */
  async deleteExpired(now: number): Promise<number> {
    let total = 0;
    for (let first = 0; first < INDEX_BUCKETS; first += SWEEP_PARALLEL) {
      const counts = await Promise.all(
        Array.from({ length: SWEEP_PARALLEL }, (_, i) => this.sweepBucket(first + i, now)),
      );
      total += counts.reduce((sum, n) => sum + n, 0);
    }
    return total + (await this.drainExpiries(now));
  }

  /** Deletes the records of one bucket's entries dead at `now`, and the entries of gone records. */
  private async sweepBucket(bucket: number, now: number): Promise<number> {
    const keys = this.bucketKeys(bucket);
    let total = 0;
    for (;;) {
      const fields = (await this.redis.run(INDEX_DEAD, keys, [
        String(now),
        String(SWEEP_BATCH),
      ])) as string[];
      if (fields.length === 0) return total;
      const gone: string[] = [];
      for (const field of fields) {
        const [state] = (await this.redis.run(
          SESSION_DELETE_IF_DEAD,
          [this.sessionKey(field.slice(TAG_LENGTH))],
          [String(now)],
        )) as [number];
        if (state === 1) total++;
        // Still alive: a touch raised the record but not (yet) its entry; the entry stays.
        if (state !== 2) gone.push(field);
      }
      if (gone.length > 0) await this.redis.run(INDEX_REMOVE, keys, gone);
      if (fields.length < SWEEP_BATCH || gone.length === 0) return total;
    }
  }

  /** The sweep of an earlier version's `expiries` (id → idleExpiresAt), until it is empty. */
  private async drainExpiries(now: number): Promise<number> {
    const expiries = this.redis.key('expiries');
    let total = 0;
    for (;;) {
      const ids = (await this.redis.run(
        ZRANGE_UNTIL,
        [expiries],
        [String(now), String(SWEEP_BATCH)],
      )) as string[];
      if (ids.length === 0) return total;
      await Promise.all(
        ids.map(async (id) => {
          const [state, userId] = (await this.redis.run(
            SESSION_DELETE_IF_DEAD,
            [this.sessionKey(id)],
            [String(now)],
          )) as [number, string?];
          if (state === 1 && userId !== undefined) {
            await this.redis.run(LEGACY_REMOVE, this.userIndex(userId).legacy, [id]);
            total++;
          }
        }),
      );
      // Live ones leave too: their own TTL expires them, and the bucket sweep sees their entries.
      await this.redis.run(ZREM, [expiries], ids);
    }
  }

  /**
   * Writes the record and indexes it unless its user already holds `max` sessions (empty: no
   * cap), decided atomically in the bucket's slot; at the cap nothing is written.
   */
  private async insert(record: SessionRecord, max: string): Promise<boolean> {
    const expireAt = expireAtFor(record.idleExpiresAt);
    const index = this.userIndex(record.userId);
    const sessionKey = this.sessionKey(record.id);
    const indexArgs = [
      record.id,
      String(record.createdAt),
      String(record.idleExpiresAt),
      max,
      expireAt,
      index.tag,
      String(LINGER_MS),
    ];
    const fields = sessionFields(record);
    let reply: unknown;
    if (this.cluster) {
      // An earlier version's index is in another slot: read before, counted against the cap.
      const [earlier, unfinished] = max
        ? ((await this.redis.run(LEGACY_COUNT, index.legacy, [String(record.createdAt)])) as [
            number,
            string[],
          ])
        : [0, []];
      const [added, evicting] = (await this.redis.run(INDEX_ADD, index.keys, [
        ...indexArgs,
        String(earlier),
      ])) as [number, string[]];
      reply = [added, [...evicting, ...unfinished]];
      if (added === 1) {
        await this.redis.run(SESSION_WRITE, [sessionKey], [expireAt, ...fields]);
        const field = index.tag + record.id;
        if ((await this.redis.run(INDEX_HAS, [index.keys[0]], [field])) !== 1) {
          // A revoke-all took the entry before the record was written: it must not survive.
          await this.deleteRecords(record.userId, [record.id]);
        }
      }
    } else {
      reply = await this.redis.run(
        SESSION_CREATE,
        [sessionKey, ...index.keys, ...index.legacy],
        [...indexArgs, ...fields],
      );
    }
    const [indexed, unfinished] = reply as [number, string[]];
    if (indexed === 0) return false;
    // Evictions a revoke-all (or an earlier version) left half-done: their records go, then their entries.
    const others = [...new Set(unfinished)].filter((id) => id !== record.id);
    if (others.length > 0) {
      await this.deleteRecords(record.userId, others);
      await this.forget(index, others);
    }
    return true;
  }

  /** Deletes the user's session records (each in its own slot); gives how many existed. */
  private async deleteRecords(userId: string, ids: readonly string[]): Promise<number> {
    const deleted = await Promise.all(
      ids.map((id) => this.redis.run(SESSION_DELETE, [this.sessionKey(id)], [userId])),
    );
    return deleted.filter((found) => typeof found === 'string').length;
  }

  /** Takes ids out of the user's bucket (and `:e`) and out of an earlier version's index. */
  private async forget(index: UserIndex, ids: readonly string[]): Promise<void> {
    await Promise.all([
      this.redis.run(
        INDEX_REMOVE,
        index.keys,
        ids.map((id) => index.tag + id),
      ),
      this.redis.run(LEGACY_REMOVE, index.legacy, [...ids]),
    ]);
  }

  private sessionKey(id: string): string {
    return `${this.prefix}s:${id}`;
  }

  private bucketKeys(bucket: number): [string, string] {
    const key = `${this.prefix}{i:${bucket}}`;
    return [key, `${key}:e`];
  }

  private userIndex(userId: string): UserIndex {
    const hash = createHash('sha256').update(userId).digest();
    const legacy = `${this.prefix}{u:${hash.toString('base64url')}}`;
    return {
      // The first 14 bits pick the bucket; bytes 2 to 10 (72 bits) tell its users apart.
      keys: this.bucketKeys(hash.readUInt16BE(0) >> 2),
      tag: hash.subarray(2, 11).toString('base64url'),
      legacy: [`${legacy}:i`, `${legacy}:live`, `${legacy}:age`, `${legacy}:evicting`],
    };
  }
}

/** Characters of a user's tag at the start of each of its bucket fields. */
const TAG_LENGTH = 12;

/** A decoded compact record gets its id from its key (earlier layouts stored the same id). */
function withId(record: SessionRecord | null, id: string): SessionRecord | null {
  // Freshly decoded or copied for this caller, so ours to complete (no second copy on the hot path).
  if (record !== null) (record as { id: string }).id = id;
  return record;
}
