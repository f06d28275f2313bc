import { ConfigError } from '../../core/errors.js';
import type { SessionRecord } from '../../core/store.js';
import {
  SESSION_ID,
  SESSION_IDLE_EXPIRES_AT,
  SESSION_USER_ID,
  type SessionRow,
  sessionFromRow,
} from '../sql/rows.js';

/** A read in flight: it may fill the cache only if nothing touching its id happened meanwhile. */
export interface Ticket {
  readonly id: string;
  readonly epoch: number;
  dirty: boolean;
}

/**
 * The validation cache: a bounded LRU of session rows, consulted only while the LISTEN connection
 * is up. When that connection drops, invalidations sent meanwhile are lost, so the cache empties
 * and stays off (every read goes to PostgreSQL) until LISTEN is in place again. It keeps only rows
 * that decoded: an undecodable one is never served from here.
 */
export class SessionCache {
  readonly maxEntries: number;
  private readonly entries = new Map<string, SessionRow>();
  private readonly inflight = new Set<Ticket>();
  private isActive = false;
  private epoch = 0;
  private hits = 0;
  private misses = 0;

  constructor(options: { maxEntries?: number } = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new ConfigError('cache.maxEntries: must be a whole number >= 1');
    }
    this.maxEntries = maxEntries;
  }

  /** False while the LISTEN connection is down (every read then goes to PostgreSQL). */
  get active(): boolean {
    return this.isActive;
  }

  size(): number {
    return this.entries.size;
  }

  stats(): { hitCount: number; missCount: number } {
    return { hitCount: this.hits, missCount: this.misses };
  }

  /** A live entry (by this process's clock), freshly decoded so callers may not alter the cache. */
  lookup(id: string): SessionRecord | null {
    const row = this.isActive ? this.entries.get(id) : undefined;
    if (!row || (row[SESSION_IDLE_EXPIRES_AT] as number) <= Date.now()) {
      if (row) this.entries.delete(id);
      this.misses++;
      return null;
    }
    this.entries.delete(id);
    this.entries.set(id, row);
    this.hits++;
    return sessionFromRow(row);
  }

  begin(id: string): Ticket {
    const ticket = { id, epoch: this.epoch, dirty: false };
    this.inflight.add(ticket);
    return ticket;
  }

  /**
   * Keeps what a read found (a row that decoded), unless the cache was off or its id was
   * invalidated since the read began.
   */
  finish(ticket: Ticket, row: SessionRow | undefined): void {
    this.inflight.delete(ticket);
    if (!row || ticket.dirty || ticket.epoch !== this.epoch || !this.isActive) return;
    const id = row[SESSION_ID] as string;
    this.entries.delete(id);
    this.entries.set(id, row);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  invalidate(id: string): void {
    this.entries.delete(id);
    for (const ticket of this.inflight) if (ticket.id === id) ticket.dirty = true;
  }

  invalidateUser(userId: string): void {
    for (const [id, row] of this.entries)
      if (row[SESSION_USER_ID] === userId) this.entries.delete(id);
    this.dirtyAll();
  }

  invalidateDeadAt(now: number): void {
    for (const [id, row] of this.entries) {
      if ((row[SESSION_IDLE_EXPIRES_AT] as number) <= now) this.entries.delete(id);
    }
    this.dirtyAll();
  }

  /** Empties the cache and switches it on (LISTEN in place) or off (connection lost). */
  reset(active: boolean): void {
    this.entries.clear();
    this.dirtyAll();
    this.epoch++;
    this.isActive = active;
  }

  private dirtyAll(): void {
    for (const ticket of this.inflight) ticket.dirty = true;
  }
}
