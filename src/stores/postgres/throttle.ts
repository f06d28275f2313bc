import type { AttemptRule, ThrottleDecision } from '../../core/capabilities.js';
import { ATTEMPT_WINDOW_COLUMNS, attemptValues } from '../sql/rows.js';
import { type AttemptWindow, consumeFrom } from '../throttle-window.js';
import { type PostgresDatabase, TYPES } from './database.js';

/**
 * Login-attempt windows in `latchkey_attempts`, counted by the shared window algorithm inside a
 * transaction that holds the key's advisory lock, so it holds across every process.
 */
export class PostgresThrottle {
  private readonly table: string;
  private readonly names: string;

  constructor(private readonly db: PostgresDatabase) {
    this.table = db.tables.attempts;
    this.names = db.names;
  }

  consume(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision> {
    return this.db.transaction(async (client) => {
      // The row may not exist yet, so a row lock cannot serialise the first attempts: a key lock can.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `${this.names}attempt ${key}`,
      ]);
      const { rows } = await client.query<AttemptWindow>({
        name: `${this.names}attempt`,
        text: `SELECT ${ATTEMPT_WINDOW_COLUMNS} FROM ${this.table} WHERE key = $1`,
        values: [key],
        types: TYPES,
      });
      const { decision, save } = consumeFrom(rows[0] ?? null, now, rule);
      if (save) {
        await client.query({
          name: `${this.names}attempt-save`,
          text: `INSERT INTO ${this.table} (key, count, window_end, next_allowed_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO UPDATE SET count = excluded.count,
                   window_end = excluded.window_end, next_allowed_at = excluded.next_allowed_at`,
          // BIGINT takes no fraction: a fractional clock's wait ends at the next millisecond.
          values: attemptValues(key, { ...save, nextAllowedAt: Math.ceil(save.nextAllowedAt) }),
        });
      }
      return decision;
    });
  }

  async reset(key: string): Promise<void> {
    await this.db.query({
      name: `${this.names}attempt-reset`,
      text: `DELETE FROM ${this.table} WHERE key = $1`,
      values: [key],
    });
  }

  deleteExpired(now: number): Promise<number> {
    return this.db.sweep('attempts', this.table, 'key', 'window_end', now);
  }
}
