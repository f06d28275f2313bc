import type {
  CreateResult,
  DataChange,
  DataUpdate,
  JsonObject,
  LatchkeyStore,
  RememberRecord,
  SessionCap,
  SessionRecord,
  ThrottleDecision,
  ThrottleRule,
  UserRecord,
} from '../core/store.js';
import { type AttemptWindow, consumeFrom } from './throttle-window.js';

export interface MemoryStoreOptions {
  /** Most records held; at the bound the record closest to expiry makes room. Default 100,000. */
  maxSessions?: number;
}

/** Columns of the per-slot time table, in milliseconds since the epoch. */
const CREATED = 0;
const LAST_SEEN = 1;
const IDLE = 2;
const ABSOLUTE = 3;
const AUTHENTICATED = 4;
const TIMES = 5;

/** A session id as latchkey makes it (SHA-256, base64url, 43 characters) is kept as 32 bytes. */
const ID_BYTES = 32;
const ID_WORDS = ID_BYTES / 4;
/** Slots per chunk of the per-slot columns. */
const CHUNK_BITS = 13;
const CHUNK = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK - 1;
const ID_LENGTH = 43;
const EMPTY_JSON = '{}';

/** base64url character code → its 6-bit value, or -1. */
const BASE64URL = new Int8Array(128).fill(-1);
for (const [i, c] of [
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
].entries()) {
  BASE64URL[c.charCodeAt(0)] = i;
}

/**
 * Everything in this process's memory: for tests and single-process apps. Lost on restart.
 *
 * Sessions are laid out for a million of them in one process (about 240 B each, see bench/):
 * a record is a slot number; a session id of the usual shape is 32 bytes in one Uint8Array,
 * found through an open-addressing index (Int32Array); the five times sit in one Float64Array;
 * the user snapshot (with ip, user agent and data, when any is set) is one JSON string. `get`
 * builds a fresh record from the slot, so callers may keep or change it without touching the
 * store. The per-user index maps a user to a slot, or to an array of slots for users with
 * several sessions. Expiry is a min-heap on `idleExpiresAt` in typed arrays, so a sweep costs
 * O(expired · log n), not O(n).
 */
export class MemoryStore implements LatchkeyStore {
  /**
   * Per-slot columns in fixed-size chunks: growing never copies them or leaves a freed
   * double-size buffer behind, and at most one chunk is partly empty.
   */
  private idChunks: Int32Array[] = [];
  private timeChunks: Float64Array[] = [];
  /** Open addressing, linear probing: slot + 1, or 0 for empty. At most half full. */
  private idIndex = new Int32Array(2048);
  /** Ids of any other shape (a store is usable with ids it did not make): id → slot, slot → id. */
  private readonly otherIds = new Map<string, number>();
  private readonly otherIdOf = new Map<number, string>();
  private readonly probe = new Int32Array(ID_WORDS);
  private readonly seed = (Math.random() * 0x7fffffff) | 1;
  private count = 0;
  /** The user id of each slot, or undefined when the slot is free. */
  private userIds: (string | undefined)[] = [];
  /** JSON: the user snapshot, or `[user, ip, userAgent, data]` when any of the last three is set. */
  private payloads: (string | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly byUser = new Map<string, number | number[]>();
  private readonly expiry = new ExpiryHeap();
  private readonly users = new Map<string, UserRecord>();
  private readonly userIdByKey = new Map<string, string>();
  private readonly attempts = new Map<string, AttemptWindow>();
  private readonly remembered = new Map<string, RememberRecord>();
  private readonly maxSessions: number;

  constructor(options: MemoryStoreOptions = {}) {
    const max = options.maxSessions ?? 100_000;
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError('maxSessions: must be a whole number >= 1');
    this.maxSessions = max;
  }

  /** Number of records held, dead or alive. */
  get size(): number {
    return this.count;
  }

  async create(record: SessionRecord, cap?: SessionCap): Promise<CreateResult> {
    const evicted: string[] = [];
    if (cap) {
      const live = this.userSlots(record.userId).filter(
        (slot) => this.time(slot, IDLE) > record.createdAt,
      );
      if (live.length >= cap.max) {
        if (cap.policy === 'reject') return { created: false, evicted };
        for (const slot of live.slice(0, live.length - cap.max + 1)) {
          evicted.push(this.idOf(slot));
          this.remove(slot);
        }
      }
    }
    const existing = this.find(record.id);
    if (existing !== -1) this.remove(existing);
    else if (this.count >= this.maxSessions) this.evictSoonest();
    this.insert(record);
    return { created: true, evicted };
  }

  async get(id: string): Promise<SessionRecord | null> {
    const slot = this.find(id);
    return slot === -1 ? null : this.recordAt(slot, id);
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    const slot = this.find(id);
    if (slot === -1) return;
    const times = this.timesOf(slot);
    const base = (slot & CHUNK_MASK) * TIMES;
    times[base + LAST_SEEN] = lastSeenAt;
    times[base + IDLE] = idleExpiresAt;
    this.expiry.push(idleExpiresAt, slot);
    if (this.expiry.size > 2 * this.count + 1024) this.rebuildExpiry();
  }

  /** Synchronous from lookup to write, so atomic in this process. */
  async updateData(id: string, change: DataChange): Promise<DataUpdate> {
    const slot = this.find(id);
    if (slot === -1) return 'missing';
    const record = this.recordAt(slot, id);
    const kept: JsonObject = { ...record.data };
    for (const key of change.remove) delete kept[key];
    // Spreads define own properties: a key named "__proto__" stays data.
    const data: JsonObject = { ...kept, ...change.set };
    const after = Buffer.byteLength(JSON.stringify(data));
    if (after > change.maxBytes && after > Buffer.byteLength(JSON.stringify(record.data))) {
      return 'too_large';
    }
    this.payloads[slot] = flat(payloadOf({ ...record, data }));
    return 'updated';
  }

  async delete(id: string): Promise<boolean> {
    const slot = this.find(id);
    if (slot === -1) return false;
    this.remove(slot);
    return true;
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    const records: SessionRecord[] = [];
    for (const slot of this.userSlots(userId)) {
      if (this.time(slot, IDLE) > now) records.push(this.recordAt(slot, this.idOf(slot)));
    }
    return records;
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    const held = this.byUser.get(userId);
    if (held === undefined) return 0;
    const except = exceptId === undefined ? -1 : this.find(exceptId);
    // The user's index entry goes at once (not slot by slot), then comes back for the one kept.
    this.byUser.delete(userId);
    let count = 0;
    let kept = -1;
    for (const slot of typeof held === 'number' ? [held] : held) {
      if (slot === except) kept = slot;
      else {
        this.remove(slot, false);
        count++;
      }
    }
    if (kept !== -1) this.byUser.set(this.userIds[kept] as string, kept);
    return count;
  }

  async deleteExpired(now: number): Promise<number> {
    let count = 0;
    for (;;) {
      const top = this.expiry.peekTime();
      if (top === undefined || top > now) return count;
      const slot = this.expiry.pop();
      // A heap entry is stale when its slot was touched (newer entry), freed or reused since;
      // whatever record holds the slot now is removed only if it is itself dead.
      if (this.userIds[slot] !== undefined && this.time(slot, IDLE) <= now) {
        this.remove(slot);
        count++;
      }
    }
  }

  async close(): Promise<void> {
    for (const map of [this.byUser, this.users, this.userIdByKey, this.attempts]) map.clear();
    this.otherIds.clear();
    this.otherIdOf.clear();
    this.idChunks = [];
    this.timeChunks = [];
    this.idIndex = new Int32Array(2048);
    this.count = 0;
    this.userIds = [];
    this.payloads = [];
    this.freeSlots.length = 0;
    this.remembered.clear();
    this.expiry.clear();
  }

  async createUser(user: UserRecord): Promise<boolean> {
    if (this.userIdByKey.has(user.usernameKey) || this.users.has(user.id)) return false;
    this.users.set(user.id, user);
    this.userIdByKey.set(user.usernameKey, user.id);
    return true;
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    return this.users.get(id) ?? null;
  }

  async findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    const id = this.userIdByKey.get(usernameKey);
    return id === undefined ? null : (this.users.get(id) ?? null);
  }

  async listUsers(): Promise<UserRecord[]> {
    return [...this.users.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  async updateUser(
    id: string,
    changes: { passwordHash?: string; disabled?: boolean },
  ): Promise<boolean> {
    const user = this.users.get(id);
    if (!user) return false;
    this.users.set(id, {
      ...user,
      passwordHash: changes.passwordHash ?? user.passwordHash,
      disabled: changes.disabled ?? user.disabled,
    });
    return true;
  }

  async deleteUser(id: string): Promise<boolean> {
    const user = this.users.get(id);
    if (!user) return false;
    this.users.delete(id);
    this.userIdByKey.delete(user.usernameKey);
    return true;
  }

  async consumeAttempt(key: string, now: number, rule: ThrottleRule): Promise<ThrottleDecision> {
    const { decision, save } = consumeFrom(this.attempts.get(key) ?? null, now, rule);
    if (save) this.attempts.set(key, save);
    return decision;
  }

  async resetAttempts(key: string): Promise<void> {
    this.attempts.delete(key);
  }

  async deleteExpiredAttempts(now: number): Promise<number> {
    let count = 0;
    for (const [key, window] of this.attempts) {
      if (window.windowEnd <= now && this.attempts.delete(key)) count++;
    }
    return count;
  }

  async createRemember(record: RememberRecord): Promise<void> {
    this.remembered.set(record.selector, record);
  }

  async findRemember(selector: string): Promise<RememberRecord | null> {
    return this.remembered.get(selector) ?? null;
  }

  async rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    const current = this.remembered.get(selector);
    if (!current || current.replacedBy !== null) return false;
    this.remembered.set(selector, { ...current, replacedBy: successor.selector, replacedAt: now });
    this.remembered.set(successor.selector, successor);
    return true;
  }

  async deleteRemember(selector: string): Promise<boolean> {
    return this.remembered.delete(selector);
  }

  async deleteRememberByUser(userId: string): Promise<number> {
    return this.deleteRememberWhere((record) => record.userId === userId);
  }

  async deleteExpiredRemember(now: number): Promise<number> {
    return this.deleteRememberWhere((record) => record.expiresAt <= now);
  }

  private deleteRememberWhere(matches: (record: RememberRecord) => boolean): number {
    let count = 0;
    for (const [selector, record] of this.remembered) {
      if (matches(record) && this.remembered.delete(selector)) count++;
    }
    return count;
  }

  /**
   * Decodes a 43-character base64url id into `probe` (8 words). False for any other shape,
   * including a last character with stray low bits (two spellings of one id must not meet).
   */
  private decode(id: string): boolean {
    if (id.length !== ID_LENGTH) return false;
    const probe = this.probe;
    let word = 0;
    let bits = 0;
    let filled = 0;
    let byte = 0;
    for (let i = 0; i < ID_LENGTH; i++) {
      const code = id.charCodeAt(i);
      const value = code < 128 ? (BASE64URL[code] as number) : -1;
      if (value < 0) return false;
      byte = (byte << 6) | value;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        // Four bytes to a word, first byte lowest (idOf writes them back the same way).
        word |= ((byte >> bits) & 0xff) << ((filled & 3) * 8);
        byte &= (1 << bits) - 1;
        if ((++filled & 3) === 0) {
          probe[(filled >> 2) - 1] = word;
          word = 0;
        }
      }
    }
    return byte === 0;
  }

  /** Index position to start probing for an id whose first word is `word`. */
  private home(word: number): number {
    return Math.imul(word ^ this.seed, 0x9e3779b1) >>> 0;
  }

  /** Where the id of `slot` starts probing. */
  private homeOf(slot: number): number {
    return this.home(this.idsOf(slot)[(slot & CHUNK_MASK) * ID_WORDS] as number);
  }

  private idsOf(slot: number): Int32Array {
    return this.idChunks[slot >>> CHUNK_BITS] as Int32Array;
  }

  private timesOf(slot: number): Float64Array {
    return this.timeChunks[slot >>> CHUNK_BITS] as Float64Array;
  }

  /** The slot holding `id`, or -1. */
  private find(id: string): number {
    if (!this.decode(id)) return this.otherIds.get(id) ?? -1;
    const { idIndex, idChunks, probe } = this;
    const mask = idIndex.length - 1;
    for (let at = this.home(probe[0] as number) & mask; ; at = (at + 1) & mask) {
      const entry = idIndex[at] as number;
      if (entry === 0) return -1;
      const idWords = idChunks[(entry - 1) >>> CHUNK_BITS] as Int32Array;
      const base = ((entry - 1) & CHUNK_MASK) * ID_WORDS;
      if (
        idWords[base] === probe[0] &&
        idWords[base + 1] === probe[1] &&
        idWords[base + 2] === probe[2] &&
        idWords[base + 3] === probe[3] &&
        idWords[base + 4] === probe[4] &&
        idWords[base + 5] === probe[5] &&
        idWords[base + 6] === probe[6] &&
        idWords[base + 7] === probe[7]
      ) {
        return entry - 1;
      }
    }
  }

  /** The id string of a slot (rebuilt from its words for ids of the usual shape). */
  private idOf(slot: number): string {
    const other = this.otherIdOf.get(slot);
    if (other !== undefined) return other;
    const bytes = Buffer.allocUnsafe(ID_BYTES);
    for (let i = 0; i < ID_WORDS; i++) {
      bytes.writeInt32LE(this.idsOf(slot)[(slot & CHUNK_MASK) * ID_WORDS + i] as number, i * 4);
    }
    return bytes.toString('base64url');
  }

  private indexId(slot: number): void {
    if ((this.count + 1) * 2 > this.idIndex.length) this.growIdIndex();
    const mask = this.idIndex.length - 1;
    let at = this.homeOf(slot) & mask;
    while (this.idIndex[at] !== 0) at = (at + 1) & mask;
    this.idIndex[at] = slot + 1;
  }

  private growIdIndex(): void {
    const old = this.idIndex;
    this.idIndex = new Int32Array(old.length * 2);
    const mask = this.idIndex.length - 1;
    for (const entry of old) {
      if (entry === 0) continue;
      let at = this.homeOf(entry - 1) & mask;
      while (this.idIndex[at] !== 0) at = (at + 1) & mask;
      this.idIndex[at] = entry;
    }
  }

  /** Deletes a slot's index entry, shifting later entries of its probe run back (no tombstones). */
  private unindexId(slot: number): void {
    const idIndex = this.idIndex;
    const mask = idIndex.length - 1;
    let hole = this.homeOf(slot) & mask;
    while (idIndex[hole] !== slot + 1) hole = (hole + 1) & mask;
    for (let at = (hole + 1) & mask; idIndex[at] !== 0; at = (at + 1) & mask) {
      const entry = idIndex[at] as number;
      const home = this.homeOf(entry - 1) & mask;
      // Move the entry into the hole unless its home lies cyclically in (hole, at].
      if (
        (at - home + idIndex.length) % idIndex.length >=
        (at - hole + idIndex.length) % idIndex.length
      ) {
        idIndex[hole] = entry;
        hole = at;
      }
    }
    idIndex[hole] = 0;
  }

  private insert(record: SessionRecord): void {
    const slot = this.freeSlots.pop() ?? this.userIds.length;
    if (slot >>> CHUNK_BITS === this.timeChunks.length) {
      this.timeChunks.push(new Float64Array(CHUNK * TIMES));
      this.idChunks.push(new Int32Array(CHUNK * ID_WORDS));
    }
    const times = this.timesOf(slot);
    const base = (slot & CHUNK_MASK) * TIMES;
    times[base + CREATED] = record.createdAt;
    times[base + LAST_SEEN] = record.lastSeenAt;
    times[base + IDLE] = record.idleExpiresAt;
    times[base + ABSOLUTE] = record.absoluteExpiresAt;
    times[base + AUTHENTICATED] = record.authenticatedAt;
    if (this.decode(record.id)) {
      this.idsOf(slot).set(this.probe, (slot & CHUNK_MASK) * ID_WORDS);
      this.indexId(slot);
    } else {
      this.otherIds.set(record.id, slot);
      this.otherIdOf.set(slot, record.id);
    }
    this.count++;
    // The per-user index's key and the slot share one string.
    const userId = this.userKey(record.userId);
    const payload = flat(payloadOf(record));
    if (slot === this.userIds.length) {
      this.userIds.push(userId);
      this.payloads.push(payload);
    } else {
      this.userIds[slot] = userId;
      this.payloads[slot] = payload;
    }
    const held = this.byUser.get(userId);
    if (held === undefined) this.byUser.set(userId, slot);
    else if (typeof held === 'number') this.byUser.set(userId, [held, slot]);
    else held.push(slot);
    this.expiry.push(record.idleExpiresAt, slot);
  }

  /** The user id string already held for this user, so each user's id is kept once. */
  private userKey(userId: string): string {
    const held = this.byUser.get(userId);
    if (held === undefined) return userId;
    return this.userIds[typeof held === 'number' ? held : (held[0] as number)] ?? userId;
  }

  private recordAt(slot: number, id: string): SessionRecord {
    const times = this.timesOf(slot);
    const base = (slot & CHUNK_MASK) * TIMES;
    const payload = this.payloads[slot] as string;
    let user: JsonObject;
    let ip: string | null = null;
    let userAgent: string | null = null;
    let data: JsonObject;
    if (payload.charCodeAt(0) === 0x5b /* [ */) {
      [user, ip, userAgent, data] = JSON.parse(payload) as [
        JsonObject,
        string | null,
        string | null,
        JsonObject,
      ];
    } else {
      user = payload === EMPTY_JSON ? {} : JSON.parse(payload);
      data = {};
    }
    return {
      id,
      userId: this.userIds[slot] as string,
      createdAt: times[base + CREATED] as number,
      lastSeenAt: times[base + LAST_SEEN] as number,
      idleExpiresAt: times[base + IDLE] as number,
      absoluteExpiresAt: times[base + ABSOLUTE] as number,
      authenticatedAt: times[base + AUTHENTICATED] as number,
      ip,
      userAgent,
      user,
      data,
    };
  }

  private time(slot: number, column: number): number {
    return this.timesOf(slot)[(slot & CHUNK_MASK) * TIMES + column] as number;
  }

  /** The user's slots, oldest session first (ties in the order they were created). */
  private userSlots(userId: string): number[] {
    const held = this.byUser.get(userId);
    if (held === undefined) return [];
    if (typeof held === 'number') return [held];
    return [...held].sort((a, b) => this.time(a, CREATED) - this.time(b, CREATED));
  }

  /** Frees a slot; `unindex` false when the caller has already dropped the user's index entry. */
  private remove(slot: number, unindex = true): void {
    const userId = this.userIds[slot];
    if (userId === undefined) return;
    const other = this.otherIdOf.get(slot);
    if (other === undefined) this.unindexId(slot);
    else {
      this.otherIds.delete(other);
      this.otherIdOf.delete(slot);
    }
    this.count--;
    const held = unindex ? this.byUser.get(userId) : undefined;
    if (typeof held === 'number') {
      this.byUser.delete(userId);
    } else if (held !== undefined) {
      held.splice(held.indexOf(slot), 1);
      if (held.length === 1) this.byUser.set(userId, held[0] as number);
    }
    this.userIds[slot] = undefined;
    this.payloads[slot] = undefined;
    this.freeSlots.push(slot);
  }

  private evictSoonest(): void {
    while (this.expiry.size > 0) {
      const time = this.expiry.peekTime();
      const slot = this.expiry.pop();
      if (this.userIds[slot] !== undefined && this.time(slot, IDLE) === time) {
        this.remove(slot);
        return;
      }
    }
  }

  /** Rebuilds the heap from live slots when stale entries outnumber them, bounding its memory. */
  private rebuildExpiry(): void {
    this.expiry.clear();
    for (let slot = 0; slot < this.userIds.length; slot++) {
      if (this.userIds[slot] !== undefined) this.expiry.push(this.time(slot, IDLE), slot);
    }
  }
}

/** The JSON kept for a record: its snapshot alone in the common case. */
function payloadOf(record: SessionRecord): string {
  const data = JSON.stringify(record.data);
  if (record.ip === null && record.userAgent === null && data === EMPTY_JSON) {
    return JSON.stringify(record.user);
  }
  return JSON.stringify([record.user, record.ip, record.userAgent, record.data]);
}

/**
 * A flat copy of a string. JSON.stringify gives a rope (a tree of pieces), which takes about
 * twice the memory of the same characters in one piece. JSON output is well-formed, so the UTF-8
 * round trip is exact.
 */
function flat(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/** Binary min-heap of (time, slot) in typed arrays, with lazy deletion: stale entries are skipped when popped. */
class ExpiryHeap {
  private times = new Float64Array(1024);
  private slots = new Int32Array(1024);
  size = 0;

  peekTime(): number | undefined {
    return this.size > 0 ? this.times[0] : undefined;
  }

  push(time: number, slot: number): void {
    if (this.size === this.times.length) {
      const times = new Float64Array(this.size * 2);
      times.set(this.times);
      this.times = times;
      const slots = new Int32Array(this.size * 2);
      slots.set(this.slots);
      this.slots = slots;
    }
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.times[parent] as number) <= time) break;
      this.times[i] = this.times[parent] as number;
      this.slots[i] = this.slots[parent] as number;
      i = parent;
    }
    this.times[i] = time;
    this.slots[i] = slot;
  }

  /** Removes the top entry and gives its slot; only call when `size > 0`. */
  pop(): number {
    const top = this.slots[0] as number;
    const n = --this.size;
    if (n > 0) {
      const time = this.times[n] as number;
      const slot = this.slots[n] as number;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child =
          right < n && (this.times[right] as number) < (this.times[left] as number) ? right : left;
        if ((this.times[child] as number) >= time) break;
        this.times[i] = this.times[child] as number;
        this.slots[i] = this.slots[child] as number;
        i = child;
      }
      this.times[i] = time;
      this.slots[i] = slot;
    }
    return top;
  }

  clear(): void {
    this.times = new Float64Array(1024);
    this.slots = new Int32Array(1024);
    this.size = 0;
  }
}
