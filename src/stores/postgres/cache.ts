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
  /** Settles when the read has finished (filled the cache or not). */
  readonly finished: Promise<void>;
  readonly settle: () => void;
}

/** The validation cache's options (the store's `cache` option). */
export interface SessionCacheOptions {
  /** Most entries kept (LRU). Default 10,000. */
  maxEntries?: number;
  /**
   * Longest time (ms) a cached session may outlive its revocation when notifications stop
   * arriving without the LISTEN connection closing (a frozen network, a hung server). Default 1,000.
   */
  maxStaleness?: number;
}

/**
 * The validation cache: a bounded LRU of session rows, consulted only while the LISTEN connection
 * is up and a heartbeat through it (see notify.ts) was answered within `maxStaleness`. When that
 * connection drops or goes quiet, invalidations sent meanwhile may be lost, so the cache empties
 * and stays off (every read goes to PostgreSQL) until it is proven again. It keeps only rows
 * that decoded: an undecodable one is never served from here.
 */
export class SessionCache {
  readonly maxEntries: number;
  /** How old (ms) the last proof that notifications reach us may be while entries are served. */
  readonly maxStaleness: number;
  private readonly entries = new Map<string, SessionRow>();
  private readonly inflight = new Set<Ticket>();
  /** The first read in flight for each id, which concurrent misses of that id wait for. */
  private readonly filling = new Map<string, Ticket>();
  /** LISTEN is in place (every later notification is on its way to us). */
  private listening = false;
  /** Entries are served: listening, and proven within `maxStaleness`. */
  private serving = false;
  /** `performance.now()` when the latest heartbeat that came back was sent. */
  private provenAt = Number.NEGATIVE_INFINITY;
  private epoch = 0;
  private hits = 0;
  private misses = 0;

  constructor(options: SessionCacheOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new ConfigError('cache.maxEntries: must be a whole number >= 1');
    }
    const maxStaleness = options.maxStaleness ?? 1000;
    if (!Number.isInteger(maxStaleness) || maxStaleness < 20) {
      throw new ConfigError('cache.maxStaleness: must be a whole number of milliseconds >= 20');
    }
    this.maxEntries = maxEntries;
    this.maxStaleness = maxStaleness;
  }

  /**
   * False while the LISTEN connection is down or unproven for longer than `maxStaleness` (every
   * read then goes to PostgreSQL). Lapsing empties the cache.
   */
  get active(): boolean {
    if (this.serving && performance.now() - this.provenAt > this.maxStaleness) {
      this.serving = false;
      this.empty();
    }
    return this.serving;
  }

  /**
   * A heartbeat sent at `sentAt` came back through LISTEN: every notification committed before
   * then has been applied. Serving starts (again) from empty if it had stopped.
   */
  proven(sentAt: number): void {
    this.provenAt = Math.max(this.provenAt, sentAt);
    if (this.serving || !this.listening) return;
    if (performance.now() - this.provenAt > this.maxStaleness) return;
    this.empty();
    this.serving = true;
  }

  size(): number {
    return this.entries.size;
  }

  stats(): { hitCount: number; missCount: number } {
    return { hitCount: this.hits, missCount: this.misses };
  }

  /** Counts one read: answered from the cache (or from a read it waited for), or by a query. */
  tally(hit: boolean): void {
    if (hit) this.hits++;
    else this.misses++;
  }

  /**
   * A live entry (by this process's clock), freshly decoded so callers may not alter the cache.
   * Counts nothing: a read may look twice (before and after waiting for a fill).
   */
  lookup(id: string): SessionRecord | null {
    const row = this.active ? this.entries.get(id) : undefined;
    if (!row || (row[SESSION_IDLE_EXPIRES_AT] as number) <= Date.now()) {
      if (row) this.entries.delete(id);
      return null;
    }
    this.entries.delete(id);
    this.entries.set(id, row);
    return sessionFromRow(row);
  }

  begin(id: string): Ticket {
    let settle = () => {};
    const finished = new Promise<void>((resolve) => {
      settle = resolve;
    });
    const ticket = { id, epoch: this.epoch, dirty: false, finished, settle };
    this.inflight.add(ticket);
    const current = this.filling.get(id);
    if (!current || current.dirty || current.epoch !== this.epoch) this.filling.set(id, ticket);
    return ticket;
  }

  /**
   * The read of `id` already in flight that may still fill the cache, if any. A miss waits for it
   * and looks again rather than sending the same query: after an invalidation, the concurrent
   * requests of one session cost one query, not one each. A read that an invalidation reached
   * fills nothing, so no waiter is offered one.
   */
  fill(id: string): Promise<void> | undefined {
    const ticket = this.filling.get(id);
    if (!ticket || ticket.dirty || ticket.epoch !== this.epoch) return undefined;
    return ticket.finished;
  }

  /**
   * Keeps what a read found (a row that decoded), unless the cache was off or its id was
   * invalidated since the read began.
   */
  finish(ticket: Ticket, row: SessionRow | undefined): void {
    this.inflight.delete(ticket);
    if (this.filling.get(ticket.id) === ticket) this.filling.delete(ticket.id);
    if (row && !ticket.dirty && ticket.epoch === this.epoch && this.active) {
      const id = row[SESSION_ID] as string;
      this.entries.delete(id);
      this.entries.set(id, row);
      if (this.entries.size > this.maxEntries) {
        const oldest = this.entries.keys().next();
        if (!oldest.done) this.entries.delete(oldest.value);
      }
    }
    ticket.settle();
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

  /**
   * Empties the cache; `listening`: LISTEN is in place (the cache serves from the next proof on)
   * or its connection is lost (the cache is off).
   */
  reset(listening: boolean): void {
    this.empty();
    this.listening = listening;
    this.serving = false;
  }

  private empty(): void {
    this.entries.clear();
    this.dirtyAll();
    this.epoch++;
  }

  private dirtyAll(): void {
    for (const ticket of this.inflight) ticket.dirty = true;
  }
}
