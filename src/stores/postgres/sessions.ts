import type pg from 'pg';
import type { DataChange, DataUpdate } from '../../core/capabilities.js';
import type { SessionRecord } from '../../core/store.js';
import { nextTurn } from '../next-turn.js';
import {
  SESSION_COLUMNS,
  type SessionRow,
  sessionFromRow,
  sessionsFromRows,
  sessionValues,
} from '../sql/rows.js';
import type { SessionCache } from './cache.js';
import { type PostgresDatabase, SWEEP_BATCH, TYPES } from './database.js';
import { type Invalidations, LISTENERS, notifiedBy } from './notify.js';

/**
 * Sessions in `latchkey_sessions`, with the per-user index, the data patch and the sweep. A
 * validation is one primary-key SELECT, or no query at all on a cache hit. Every write that
 * changes or removes a session notifies in the same statement (see notify.ts).
 */
export class PostgresSessions {
  private readonly table: string;
  private readonly names: string;

  constructor(
    private readonly db: PostgresDatabase,
    private readonly cache: SessionCache | null,
    private readonly invalidations: Invalidations,
  ) {
    this.table = db.tables.sessions;
    this.names = db.names;
  }

  async create(record: SessionRecord): Promise<void> {
    await this.db.query({
      name: `${this.names}insert`,
      text: `INSERT INTO ${this.table} (${SESSION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      values: sessionValues(record),
    });
  }

  /** Serialised per user by an advisory lock held to COMMIT, across every process. */
  createCapped(record: SessionRecord, max: number): Promise<boolean> {
    return this.db.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `${this.names}user ${record.userId}`,
      ]);
      // A statement of its own, after the lock: its snapshot sees every earlier holder's insert.
      const { rowCount } = await client.query({
        name: `${this.names}insert-capped`,
        text: `INSERT INTO ${this.table} (${SESSION_COLUMNS})
               SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
               WHERE (SELECT count(*) FROM ${this.table}
                      WHERE user_id = $2 AND idle_expires_at > $3) < $14`,
        values: [...sessionValues(record), max],
      });
      return rowCount === 1;
    });
  }

  async get(id: string): Promise<SessionRecord | null> {
    if (!this.db.migrated) await this.db.migrations();
    const cache = this.cache;
    if (cache?.active) {
      // An invalidation that reached our socket together with the answer that led here is read
      // first: one turn of the event loop lets the LISTEN connection's data through.
      await nextTurn();
      let cached = cache.lookup(id);
      const fill = cached ? undefined : cache.fill(id);
      if (fill) {
        await fill;
        cached = cache.lookup(id);
      }
      cache.tally(cached !== null);
      if (cached) return cached;
    }
    const ticket = cache?.begin(id);
    let row: SessionRow | undefined;
    let record: SessionRecord | null = null;
    try {
      const result = await this.db.pool.query<unknown[]>({
        name: `${this.names}get`,
        text: `SELECT ${SESSION_COLUMNS} FROM ${this.table} WHERE id = $1`,
        values: [id],
        rowMode: 'array',
        types: TYPES,
      });
      row = result.rows[0];
      record = row ? sessionFromRow(row) : null;
    } finally {
      if (ticket) cache?.finish(ticket, record ? row : undefined);
    }
    return record;
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    await this.notifying(id, (nonce) => ({
      name: `${this.names}touch`,
      text: `WITH t AS (UPDATE ${this.table} SET last_seen_at = $2, idle_expires_at = $3
               WHERE id = $1 RETURNING id)
             SELECT pg_notify($4, $5 || ' d ' || id), ${LISTENERS('$6')} FROM t`,
      values: [id, lastSeenAt, idleExpiresAt, this.invalidations.channel, nonce, this.listenerName],
    }));
  }

  /**
   * One UPDATE computing the merge from the row it has locked (READ COMMITTED re-reads a row
   * changed meanwhile), so parallel updates from any process never lose one another; it sends the
   * same NOTIFY as every session write, so validation caches drop the old copy before it resolves.
   * The merge goes through jsonb: keys come back in jsonb's order and numbers as jsonb prints them
   * (the same values), and a record whose `data` holds U+0000 cannot be merged (an error). The
   * size is measured on jsonb's text, before and after. Only telling "too large" from "missing",
   * after a refusal, is a second read.
   */
  async updateData(id: string, change: DataChange): Promise<DataUpdate> {
    const merged = '((data::jsonb - $3::text[]) || $2::jsonb)::text';
    const updated = await this.notifying(id, (nonce) => ({
      name: `${this.names}update-data`,
      text: `WITH u AS (UPDATE ${this.table} SET data = ${merged}
               WHERE id = $1 AND octet_length(${merged}) <= greatest($4, octet_length(data::jsonb::text))
               RETURNING id)
             SELECT pg_notify($5, $6 || ' d ' || id), ${LISTENERS('$7')} FROM u`,
      values: [
        id,
        JSON.stringify(change.set),
        change.remove,
        change.maxBytes,
        this.invalidations.channel,
        nonce,
        this.listenerName,
      ],
    }));
    if (updated > 0) return 'updated';
    const { rowCount } = await this.db.query({
      name: `${this.names}exists`,
      text: `SELECT 1 FROM ${this.table} WHERE id = $1`,
      values: [id],
    });
    return rowCount ? 'too_large' : 'missing';
  }

  async delete(id: string): Promise<boolean> {
    const deleted = await this.notifying(id, (nonce) => ({
      name: `${this.names}delete`,
      text: `WITH gone AS (DELETE FROM ${this.table} WHERE id = $1 RETURNING id)
             SELECT pg_notify($2, $3 || ' d ' || id), ${LISTENERS('$4')} FROM gone`,
      values: [id, this.invalidations.channel, nonce, this.listenerName],
    }));
    return deleted > 0;
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    const rows = await this.db.arrays({
      name: `${this.names}list`,
      text: `SELECT ${SESSION_COLUMNS} FROM ${this.table} WHERE user_id = $1 AND idle_expires_at > $2
             ORDER BY created_at, id`,
      values: [userId, now],
      rowMode: 'array',
    });
    return sessionsFromRows(rows);
  }

  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    this.cache?.invalidateUser(userId);
    const { n } = await this.invalidations.acknowledged(
      (nonce) =>
        this.counted({
          name: `${this.names}delete-user`,
          text: `WITH gone AS (DELETE FROM ${this.table}
                   WHERE user_id = $1 AND id IS DISTINCT FROM $2 RETURNING id)
                 SELECT n, CASE WHEN n > 0 THEN pg_notify($3, $4) END, ${LISTENERS('$5')}
                 FROM (SELECT count(*)::int AS n FROM gone) AS c`,
          values: [
            userId,
            exceptId ?? null,
            this.invalidations.channel,
            `${nonce} u ${userId}`,
            this.listenerName,
          ],
        }),
      (outcome) => (outcome.n > 0 ? outcome.listeners : 0),
    );
    return n;
  }

  /**
   * Deletes in batches of 1,000 rows (each its own short statement, locked rows skipped) so a
   * large sweep never holds many locks for long; each batch tells caches to drop what died.
   */
  async deleteExpired(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const { n } = await this.invalidations.acknowledged(
        (nonce) =>
          this.counted({
            name: `${this.names}sweep-sessions`,
            text: `WITH doomed AS (SELECT id FROM ${this.table} WHERE idle_expires_at <= $1
                 LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED),
               gone AS (DELETE FROM ${this.table} AS s USING doomed
                 WHERE s.id = doomed.id AND s.idle_expires_at <= $1 RETURNING s.id)
               SELECT n, CASE WHEN n > 0 THEN pg_notify($2, $3) END, ${LISTENERS('$4')}
               FROM (SELECT count(*)::int AS n FROM gone) AS c`,
            values: [now, this.invalidations.channel, `${nonce} x ${now}`, this.listenerName],
          }),
        (outcome) => (outcome.n > 0 ? outcome.listeners : 0),
      );
      if (n === 0) return total;
      total += n;
    }
  }

  private get listenerName(): string {
    return this.invalidations.listenerName;
  }

  /** Runs a one-session write that notifies; gives how many rows it changed (0 or 1). */
  private async notifying(id: string, build: (nonce: string) => pg.QueryConfig): Promise<number> {
    this.cache?.invalidate(id);
    const { changed } = await this.invalidations.acknowledged(
      async (nonce) => {
        const result = await this.db.query(build(nonce));
        return { changed: result.rowCount ?? 0, listeners: notifiedBy(result) };
      },
      (outcome) => outcome.listeners,
    );
    return changed;
  }

  /** Runs a statement that answers one row `{ n, listeners }`. */
  private async counted(config: pg.QueryConfig): Promise<{ n: number; listeners: number }> {
    const { rows } = await this.db.query<{ n: number; listeners: number }>(config);
    return { n: rows[0]?.n ?? 0, listeners: rows[0]?.listeners ?? 0 };
  }
}
