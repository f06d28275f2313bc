import type Database from 'better-sqlite3';
import type { DataChange, DataUpdate } from '../../core/capabilities.js';
import type { SessionRecord } from '../../core/store.js';
import {
  SESSION_COLUMNS,
  type SessionRow,
  sessionFromRow,
  sessionsFromRows,
  sessionValues,
} from '../sql/rows.js';

/** A `get` waiting for its batch. */
interface PendingRead {
  readonly id: string;
  row: SessionRow | null;
  readonly resolve: (record: SessionRecord | null) => void;
  readonly reject: (error: unknown) => void;
}

/** Sessions in `latchkey_sessions`, with the per-user index, the data patch and the sweep. */
export class SqliteSessions {
  private readonly statements;
  private readonly capped;
  private readonly readMany;
  /** Lookups waiting for the next batch (see {@link get}). */
  private pending: PendingRead[] = [];
  /** `updateData` statements by shape (keys removed, keys set): a JSON path is one parameter. */
  private readonly merges = new Map<string, Database.Statement>();
  private exists: Database.Statement<[string], number> | null = null;

  constructor(private readonly db: Database.Database) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO latchkey_sessions (${SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // Raw rows (arrays) in a fixed column order: better-sqlite3 builds a keyed object per row
      // column by column, which cost more than the lookup itself.
      get: db
        .prepare<[string], SessionRow>(
          `SELECT ${SESSION_COLUMNS} FROM latchkey_sessions WHERE id = ?`,
        )
        .raw(true),
      touch: db.prepare(
        'UPDATE latchkey_sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?',
      ),
      delete: db.prepare('DELETE FROM latchkey_sessions WHERE id = ?'),
      liveByUser: db
        .prepare<[string, number], SessionRow>(
          `SELECT ${SESSION_COLUMNS} FROM latchkey_sessions WHERE user_id = ? AND idle_expires_at > ?
           ORDER BY created_at, id`,
        )
        .raw(true),
      countLive: db
        .prepare<[string, number], number>(
          'SELECT count(*) FROM latchkey_sessions WHERE user_id = ? AND idle_expires_at > ?',
        )
        .pluck(),
      deleteDeadOfUser: db.prepare(
        'DELETE FROM latchkey_sessions WHERE user_id = ? AND idle_expires_at <= ?',
      ),
      deleteByUser: db.prepare('DELETE FROM latchkey_sessions WHERE user_id = ? AND id IS NOT ?'),
      deleteExpired: db.prepare(
        'DELETE FROM latchkey_sessions WHERE id IN (SELECT id FROM latchkey_sessions WHERE idle_expires_at <= ? LIMIT 1000)',
      ),
    };
    this.capped = db.transaction((record: SessionRecord, max: number): boolean => {
      const { deleteDeadOfUser, countLive, insert } = this.statements;
      // The user's dead rows go first: they would only slow the count down.
      deleteDeadOfUser.run(record.userId, record.createdAt);
      if ((countLive.get(record.userId, record.createdAt) ?? 0) >= max) return false;
      insert.run(sessionValues(record));
      return true;
    });
    // One read transaction for a batch of lookups: in WAL mode each transaction takes and drops a
    // shared lock on the -shm file (two fcntl calls), which cost more than the lookup itself.
    this.readMany = db.transaction((batch: PendingRead[]) => {
      const get = this.statements.get;
      for (const read of batch) read.row = get.get(read.id) ?? null;
    });
  }

  create(record: SessionRecord): void {
    this.statements.insert.run(sessionValues(record));
  }

  /** IMMEDIATE takes the write lock before counting, so processes sharing the file serialise here. */
  createCapped(record: SessionRecord, max: number): boolean {
    return this.capped.immediate(record, max);
  }

  /**
   * Lookups are batched: every `get` issued in one turn of the event loop (under load, the
   * requests of many connections) is answered from one read transaction, run from
   * `setImmediate`, so they share one WAL lock instead of taking one each. A lookup never waits
   * for more than the rest of the current turn. Each answer is what the database held when the
   * batch ran, after any write made before it.
   */
  get(id: string): Promise<SessionRecord | null> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ id, row: null, resolve, reject }) === 1) setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    const batch = this.pending;
    this.pending = [];
    try {
      if (batch.length === 1 || this.db.inTransaction) {
        for (const read of batch) read.row = this.statements.get.get(read.id) ?? null;
      } else {
        this.readMany(batch);
      }
    } catch (error) {
      for (const read of batch) read.reject(error);
      return;
    }
    for (const read of batch) read.resolve(read.row ? sessionFromRow(read.row) : null);
  };

  touch(id: string, lastSeenAt: number, idleExpiresAt: number): void {
    this.statements.touch.run(lastSeenAt, idleExpiresAt, id);
  }

  /**
   * One UPDATE (`json_set` over `json_remove`, on the row as it is when the write lock is held),
   * so processes sharing the file never lose one another's keys. SQLite keeps the JSON text of
   * values it does not touch as it was. The size check is in the same statement's WHERE; only
   * telling "too large" from "missing" afterwards is a second read.
   */
  updateData(id: string, change: DataChange): DataUpdate {
    const set = Object.entries(change.set);
    const values: Record<string, string | number> = { id, max: change.maxBytes };
    change.remove.forEach((key, i) => {
      values[`r${i}`] = jsonPath(key);
    });
    set.forEach(([key, value], i) => {
      values[`k${i}`] = jsonPath(key);
      values[`v${i}`] = JSON.stringify(value);
    });
    if (this.mergeStatement(change.remove.length, set.length).run(values).changes > 0) {
      return 'updated';
    }
    this.exists ??= this.db
      .prepare<[string], number>('SELECT 1 FROM latchkey_sessions WHERE id = ?')
      .pluck();
    return this.exists.get(id) === undefined ? 'missing' : 'too_large';
  }

  private mergeStatement(removed: number, set: number): Database.Statement {
    const shape = `${removed}:${set}`;
    let statement = this.merges.get(shape);
    if (!statement) {
      let merged = 'data';
      if (removed > 0) {
        const paths = Array.from({ length: removed }, (_, i) => `@r${i}`);
        merged = `json_remove(${merged}, ${paths.join(', ')})`;
      }
      if (set > 0) {
        const pairs = Array.from({ length: set }, (_, i) => `@k${i}, json(@v${i})`);
        merged = `json_set(${merged}, ${pairs.join(', ')})`;
      }
      statement = this.db.prepare(
        `UPDATE latchkey_sessions SET data = ${merged} WHERE id = @id
           AND length(CAST(${merged} AS BLOB)) <= max(@max, length(CAST(data AS BLOB)))`,
      );
      // Shapes are few in practice; a caller inventing new ones never grows this without bound.
      if (this.merges.size >= 256) this.merges.clear();
      this.merges.set(shape, statement);
    }
    return statement;
  }

  delete(id: string): boolean {
    return this.statements.delete.run(id).changes > 0;
  }

  listByUser(userId: string, now: number): SessionRecord[] {
    return sessionsFromRows(this.statements.liveByUser.all(userId, now));
  }

  deleteByUser(userId: string, exceptId?: string): number {
    return this.statements.deleteByUser.run(userId, exceptId ?? null).changes;
  }

  /** Deletes in batches of 1,000 so a large sweep never holds the write lock for long. */
  async deleteExpired(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const { changes } = this.statements.deleteExpired.run(now);
      total += changes;
      if (changes === 0) return total;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

/** A JSON path naming one top-level key, whatever characters it holds (`$."a.b"`). */
function jsonPath(key: string): string {
  return `$.${JSON.stringify(key)}`;
}
