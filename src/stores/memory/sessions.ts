import type { DataChange, DataUpdate } from '../../core/capabilities.js';
import { mergeData } from '../../core/data.js';
import type { JsonObject, SessionRecord } from '../../core/store.js';
import { Assurances } from './assurances.js';
import { CHUNK, CHUNK_BITS, CHUNK_MASK } from './chunks.js';
import { ExpiryHeap } from './expiry-heap.js';
import { IdIndex } from './id-index.js';
import { UserIndex } from './user-index.js';

/** Columns of the per-slot time table, in milliseconds since the epoch. */
const CREATED = 0;
const LAST_SEEN = 1;
const IDLE = 2;
const ABSOLUTE = 3;
const AUTHENTICATED = 4;
const TIMES = 5;
const EMPTY_JSON = '{}';

/**
 * The sessions of the memory store, laid out for a million of them in one process (about
 * 240 B each, see bench/): a record is a slot number; its id lives in the {@link IdIndex}, its five
 * times in one chunked Float64Array, its `aal`/`amr` as the number of an interned pair
 * ({@link Assurances}) in a chunked Uint16Array, and its user snapshot (with ip, user agent and
 * data, when any is set) in one JSON string. `get` builds a fresh record from the slot, so callers may keep or
 * change it without touching the store. Expiry is a min-heap on `idleExpiresAt`, so a sweep costs
 * O(expired · log n), not O(n). Every method is synchronous, so atomic in this process.
 */
export class MemorySessions {
  private timeChunks: Float64Array[] = [];
  private assuranceChunks: Uint16Array[] = [];
  private readonly assurances = new Assurances();
  private readonly ids = new IdIndex();
  /** The user id of each slot, or undefined when the slot is free. */
  private userIds: (string | undefined)[] = [];
  /** JSON: the user snapshot, or `[user, ip, userAgent, data]` when any of the last three is set. */
  private payloads: (string | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly byUser = new UserIndex();
  private readonly expiry = new ExpiryHeap();
  private count = 0;

  /** @param maxSessions most records held; at the bound the record closest to expiry makes room. */
  constructor(private readonly maxSessions: number) {}

  /** Number of records held, dead or alive. */
  get size(): number {
    return this.count;
  }

  create(record: SessionRecord): void {
    // First: the only step that can throw, so a refused record changes nothing.
    const assurance = this.assurances.numberOf(record.aal, record.amr);
    const existing = this.ids.find(record.id);
    if (existing !== -1) this.remove(existing);
    else if (this.count >= this.maxSessions) this.evictSoonest();
    this.insert(record, assurance);
  }

  createCapped(record: SessionRecord, max: number): boolean {
    let live = 0;
    for (const slot of this.byUser.of(record.userId)) {
      if (this.time(slot, IDLE) > record.createdAt) live++;
    }
    if (live >= max) return false;
    this.create(record);
    return true;
  }

  get(id: string): SessionRecord | null {
    const slot = this.ids.find(id);
    return slot === -1 ? null : this.recordAt(slot, id);
  }

  touch(id: string, lastSeenAt: number, idleExpiresAt: number): void {
    const slot = this.ids.find(id);
    if (slot === -1) return;
    const times = this.timesOf(slot);
    const base = (slot & CHUNK_MASK) * TIMES;
    times[base + LAST_SEEN] = lastSeenAt;
    times[base + IDLE] = idleExpiresAt;
    this.expiry.push(idleExpiresAt, slot);
    if (this.expiry.size > 2 * this.count + 1024) this.rebuildExpiry();
  }

  updateData(id: string, change: DataChange): DataUpdate {
    const slot = this.ids.find(id);
    if (slot === -1) return 'missing';
    const record = this.recordAt(slot, id);
    const data = mergeData(record.data, change);
    if (data === 'too_large') return 'too_large';
    this.payloads[slot] = payloadOf({ ...record, data });
    return 'updated';
  }

  delete(id: string): boolean {
    const slot = this.ids.find(id);
    if (slot === -1) return false;
    this.remove(slot);
    return true;
  }

  /** The user's records alive at `now`, oldest first (ties in the order they were created). */
  listByUser(userId: string, now: number): SessionRecord[] {
    const slots = [...this.byUser.of(userId)].sort(
      (a, b) => this.time(a, CREATED) - this.time(b, CREATED),
    );
    const records: SessionRecord[] = [];
    for (const slot of slots) {
      if (this.time(slot, IDLE) > now) records.push(this.recordAt(slot, this.ids.idOf(slot)));
    }
    return records;
  }

  deleteByUser(userId: string, exceptId?: string): number {
    const except = exceptId === undefined ? -1 : this.ids.find(exceptId);
    let count = 0;
    let kept = -1;
    for (const slot of this.byUser.take(userId)) {
      if (slot === except) kept = slot;
      else {
        this.remove(slot, false);
        count++;
      }
    }
    if (kept !== -1) this.byUser.add(this.userIds[kept] as string, kept);
    return count;
  }

  deleteExpired(now: number): number {
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

  clear(): void {
    this.timeChunks = [];
    this.assuranceChunks = [];
    this.ids.clear();
    this.userIds = [];
    this.payloads = [];
    this.freeSlots.length = 0;
    this.byUser.clear();
    this.expiry.clear();
    this.count = 0;
  }

  private insert(record: SessionRecord, assurance: number): void {
    const slot = this.freeSlots.pop() ?? this.userIds.length;
    if (slot >>> CHUNK_BITS === this.timeChunks.length) {
      this.timeChunks.push(new Float64Array(CHUNK * TIMES));
      this.assuranceChunks.push(new Uint16Array(CHUNK));
    }
    const times = this.timesOf(slot);
    const base = (slot & CHUNK_MASK) * TIMES;
    times[base + CREATED] = record.createdAt;
    times[base + LAST_SEEN] = record.lastSeenAt;
    times[base + IDLE] = record.idleExpiresAt;
    times[base + ABSOLUTE] = record.absoluteExpiresAt;
    times[base + AUTHENTICATED] = record.authenticatedAt;
    (this.assuranceChunks[slot >>> CHUNK_BITS] as Uint16Array)[slot & CHUNK_MASK] = assurance;
    this.ids.add(record.id, slot);
    this.count++;
    // The per-user index's key and the slot share one string, so each user's id is kept once.
    const shared = this.byUser.anyOf(record.userId);
    const userId = shared === -1 ? record.userId : (this.userIds[shared] ?? record.userId);
    const payload = payloadOf(record);
    if (slot === this.userIds.length) {
      this.userIds.push(userId);
      this.payloads.push(payload);
    } else {
      this.userIds[slot] = userId;
      this.payloads[slot] = payload;
    }
    this.byUser.add(userId, slot);
    this.expiry.push(record.idleExpiresAt, slot);
  }

  /** Frees a slot; `unindex` false when the caller has already dropped the user's index entry. */
  private remove(slot: number, unindex = true): void {
    const userId = this.userIds[slot];
    if (userId === undefined) return;
    this.ids.remove(slot);
    this.count--;
    if (unindex) this.byUser.remove(userId, slot);
    this.userIds[slot] = undefined;
    this.payloads[slot] = undefined;
    this.freeSlots.push(slot);
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
    const assurance = (this.assuranceChunks[slot >>> CHUNK_BITS] as Uint16Array)[
      slot & CHUNK_MASK
    ] as number;
    return {
      id,
      userId: this.userIds[slot] as string,
      createdAt: times[base + CREATED] as number,
      lastSeenAt: times[base + LAST_SEEN] as number,
      idleExpiresAt: times[base + IDLE] as number,
      absoluteExpiresAt: times[base + ABSOLUTE] as number,
      authenticatedAt: times[base + AUTHENTICATED] as number,
      aal: this.assurances.aalOf(assurance),
      amr: this.assurances.amrOf(assurance),
      ip,
      userAgent,
      user,
      data,
    };
  }

  private timesOf(slot: number): Float64Array {
    return this.timeChunks[slot >>> CHUNK_BITS] as Float64Array;
  }

  private time(slot: number, column: number): number {
    return this.timesOf(slot)[(slot & CHUNK_MASK) * TIMES + column] as number;
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

/**
 * The JSON kept for a record: its snapshot alone in the common case. Flattened: JSON.stringify
 * gives a rope (a tree of pieces) that takes about twice the memory of the same characters in one
 * piece, and JSON output is well-formed, so the UTF-8 round trip is exact.
 */
function payloadOf(record: SessionRecord): string {
  const data = JSON.stringify(record.data);
  const json =
    record.ip === null && record.userAgent === null && data === EMPTY_JSON
      ? JSON.stringify(record.user)
      : JSON.stringify([record.user, record.ip, record.userAgent, record.data]);
  return Buffer.from(json, 'utf8').toString('utf8');
}
