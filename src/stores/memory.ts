import type {
  CreateResult,
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

/**
 * Everything in this process's memory: for tests and single-process apps. Lost on restart.
 * Session expiry is a min-heap on `idleExpiresAt`, so a sweep costs O(expired · log n), not O(n).
 */
export class MemoryStore implements LatchkeyStore {
  private readonly records = new Map<string, SessionRecord>();
  private readonly byUser = new Map<string, Set<string>>();
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
    return this.records.size;
  }

  async create(record: SessionRecord, cap?: SessionCap): Promise<CreateResult> {
    const evicted: string[] = [];
    if (cap) {
      const live = this.userRecords(record.userId).filter(
        (r) => r.idleExpiresAt > record.createdAt,
      );
      if (live.length >= cap.max) {
        if (cap.policy === 'reject') return { created: false, evicted };
        for (const old of live.slice(0, live.length - cap.max + 1)) {
          this.remove(old.id);
          evicted.push(old.id);
        }
      }
    }
    if (!this.records.has(record.id) && this.records.size >= this.maxSessions) this.evictSoonest();
    this.records.set(record.id, record);
    const ids = this.byUser.get(record.userId) ?? new Set<string>();
    this.byUser.set(record.userId, ids.add(record.id));
    this.expiry.push(record.idleExpiresAt, record.id);
    return { created: true, evicted };
  }

  async get(id: string): Promise<SessionRecord | null> {
    return this.records.get(id) ?? null;
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    const record = this.records.get(id);
    if (!record) return;
    this.records.set(id, { ...record, lastSeenAt, idleExpiresAt });
    this.expiry.push(idleExpiresAt, id);
    this.expiry.compactIfStale(this.records);
  }

  async delete(id: string): Promise<boolean> {
    return this.remove(id);
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    return this.userRecords(userId).filter((r) => r.idleExpiresAt > now);
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    let count = 0;
    for (const id of [...(this.byUser.get(userId) ?? [])]) {
      if (id !== exceptId && this.remove(id)) count++;
    }
    return count;
  }

  async deleteExpired(now: number): Promise<number> {
    let count = 0;
    for (;;) {
      const top = this.expiry.peek();
      if (!top || top.time > now) return count;
      this.expiry.pop();
      const record = this.records.get(top.id);
      // A heap entry is stale when the record was touched (newer entry) or already removed.
      if (record && record.idleExpiresAt === top.time && this.remove(top.id)) count++;
    }
  }

  async close(): Promise<void> {
    for (const map of [this.records, this.byUser, this.users, this.userIdByKey, this.attempts]) {
      map.clear();
    }
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

  private userRecords(userId: string): SessionRecord[] {
    const records: SessionRecord[] = [];
    for (const id of this.byUser.get(userId) ?? []) {
      const record = this.records.get(id);
      if (record) records.push(record);
    }
    return records.sort((a, b) => a.createdAt - b.createdAt);
  }

  private remove(id: string): boolean {
    const record = this.records.get(id);
    if (!record) return false;
    this.records.delete(id);
    const ids = this.byUser.get(record.userId);
    ids?.delete(id);
    if (ids?.size === 0) this.byUser.delete(record.userId);
    return true;
  }

  private evictSoonest(): void {
    for (let top = this.expiry.pop(); top; top = this.expiry.pop()) {
      const record = this.records.get(top.id);
      if (record && record.idleExpiresAt === top.time) {
        this.remove(top.id);
        return;
      }
    }
  }
}

/** Binary min-heap of (time, id) with lazy deletion: stale entries are skipped when popped. */
class ExpiryHeap {
  private times: number[] = [];
  private ids: string[] = [];

  peek(): { time: number; id: string } | null {
    const time = this.times[0];
    const id = this.ids[0];
    return time === undefined || id === undefined ? null : { time, id };
  }

  push(time: number, id: string): void {
    this.times.push(time);
    this.ids.push(id);
    this.up(this.times.length - 1);
  }

  pop(): { time: number; id: string } | null {
    const top = this.peek();
    const lastTime = this.times.pop();
    const lastId = this.ids.pop();
    if (top && this.times.length > 0 && lastTime !== undefined && lastId !== undefined) {
      this.times[0] = lastTime;
      this.ids[0] = lastId;
      this.down(0);
    }
    return top;
  }

  /** Rebuilds from live records when stale entries outnumber them, bounding memory. */
  compactIfStale(records: Map<string, SessionRecord>): void {
    if (this.times.length <= 2 * records.size + 1024) return;
    this.clear();
    for (const record of records.values()) this.push(record.idleExpiresAt, record.id);
  }

  clear(): void {
    this.times = [];
    this.ids = [];
  }

  private up(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.times[parent] as number) <= (this.times[i] as number)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(index: number): void {
    const n = this.times.length;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < n && (this.times[left] as number) < (this.times[smallest] as number))
        smallest = left;
      if (right < n && (this.times[right] as number) < (this.times[smallest] as number))
        smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b] as number, this.times[a] as number];
    [this.ids[a], this.ids[b]] = [this.ids[b] as string, this.ids[a] as string];
  }
}
