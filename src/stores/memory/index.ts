import type {
  AttemptRule,
  DataChange,
  DataUpdate,
  LatchkeyStore,
  ThrottleDecision,
} from '../../core/capabilities.js';
import { ConfigError } from '../../core/errors.js';
import type {
  FactorKind,
  FactorRecord,
  RememberRecord,
  SessionRecord,
  UserRecord,
} from '../../core/store.js';
import { MemoryFactors } from './factors.js';
import { MemoryRemember } from './remember.js';
import { MemorySessions } from './sessions.js';
import { MemoryThrottle } from './throttle.js';
import { MemoryUsers } from './users.js';

export interface MemoryStoreOptions {
  /** Most records held; at the bound the record closest to expiry makes room. Default 100,000. */
  maxSessions?: number;
}

/**
 * Everything in this process's memory: for tests and single-process apps. Lost on restart.
 *
 * Each role keeps its own structures (sessions.ts holds the compact session table); every one of
 * them is synchronous from lookup to write, so each method here is atomic in this process. A
 * record never leaves the process, so there is never an undecodable one to read.
 */
export class MemoryStore implements LatchkeyStore {
  private readonly sessions: MemorySessions;
  private readonly users = new MemoryUsers();
  private readonly attempts = new MemoryThrottle();
  private readonly remembered = new MemoryRemember();
  private readonly factors = new MemoryFactors();

  constructor(options: MemoryStoreOptions = {}) {
    const max = options.maxSessions ?? 100_000;
    if (!Number.isInteger(max) || max < 1) {
      throw new ConfigError('maxSessions: must be a whole number >= 1');
    }
    this.sessions = new MemorySessions(max);
  }

  /** Number of records held, dead or alive. */
  get size(): number {
    return this.sessions.size;
  }

  async create(record: SessionRecord): Promise<void> {
    this.sessions.create(record);
  }

  async createCapped(record: SessionRecord, max: number): Promise<boolean> {
    return this.sessions.createCapped(record, max);
  }

  async get(id: string): Promise<SessionRecord | null> {
    return this.sessions.get(id);
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    this.sessions.touch(id, lastSeenAt, idleExpiresAt);
  }

  async updateData(id: string, change: DataChange): Promise<DataUpdate> {
    return this.sessions.updateData(id, change);
  }

  async delete(id: string): Promise<boolean> {
    return this.sessions.delete(id);
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    return this.sessions.listByUser(userId, now);
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    return this.sessions.deleteByUser(userId, exceptId);
  }

  async deleteExpired(now: number): Promise<number> {
    return this.sessions.deleteExpired(now);
  }

  async close(): Promise<void> {
    this.sessions.clear();
    this.users.clear();
    this.attempts.clear();
    this.remembered.clear();
    this.factors.clear();
  }

  async createUser(user: UserRecord): Promise<boolean> {
    return this.users.create(user);
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    return this.users.findById(id);
  }

  async findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    return this.users.findByKey(usernameKey);
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.users.list();
  }

  async updateUser(
    id: string,
    changes: { passwordHash?: string; disabled?: boolean },
  ): Promise<boolean> {
    return this.users.update(id, changes);
  }

  /** Its second factors go with it. */
  async deleteUser(id: string): Promise<boolean> {
    this.factors.deleteByUser(id);
    return this.users.delete(id);
  }

  async consumeAttempt(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision> {
    return this.attempts.consume(key, now, rule);
  }

  async resetAttempts(key: string): Promise<void> {
    this.attempts.reset(key);
  }

  async deleteExpiredAttempts(now: number): Promise<number> {
    return this.attempts.deleteExpired(now);
  }

  async createRemember(record: RememberRecord): Promise<void> {
    this.remembered.create(record);
  }

  async findRemember(selector: string): Promise<RememberRecord | null> {
    return this.remembered.find(selector);
  }

  async rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    return this.remembered.rotate(selector, successor, now);
  }

  async deleteRemember(selector: string): Promise<boolean> {
    return this.remembered.delete(selector);
  }

  async deleteRememberByUser(userId: string): Promise<number> {
    return this.remembered.deleteByUser(userId);
  }

  async deleteExpiredRemember(now: number): Promise<number> {
    return this.remembered.deleteExpired(now);
  }

  async createFactor(factor: FactorRecord): Promise<void> {
    this.factors.create(factor);
  }

  async listFactors(userId: string): Promise<FactorRecord[]> {
    return this.factors.list(userId);
  }

  async updateFactor(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): Promise<boolean> {
    return this.factors.update(userId, id, changes);
  }

  async advanceFactorCounter(
    userId: string,
    id: string,
    counter: number,
    now: number,
  ): Promise<boolean> {
    return this.factors.advanceCounter(userId, id, counter, now);
  }

  async deleteFactor(userId: string, id: string): Promise<boolean> {
    return this.factors.delete(userId, id);
  }

  async deleteFactors(userId: string, kind?: FactorKind): Promise<number> {
    return this.factors.deleteByUser(userId, kind);
  }
}
