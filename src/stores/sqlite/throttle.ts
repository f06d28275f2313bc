import type Database from 'better-sqlite3';
import type { AttemptRule, ThrottleDecision } from '../../core/capabilities.js';
import { ATTEMPT_WINDOW_COLUMNS, attemptValues } from '../sql/rows.js';
import { type AttemptWindow, consumeFrom } from '../throttle-window.js';

/** Login-attempt windows in `latchkey_attempts`, counted by the shared window algorithm. */
export class SqliteThrottle {
  private readonly statements;
  private readonly consumeInTransaction;

  constructor(db: Database.Database) {
    this.statements = {
      window: db.prepare<[string], AttemptWindow>(
        `SELECT ${ATTEMPT_WINDOW_COLUMNS} FROM latchkey_attempts WHERE key = ?`,
      ),
      save: db.prepare(
        `INSERT INTO latchkey_attempts (key, count, window_end, next_allowed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET count = excluded.count, window_end = excluded.window_end,
           next_allowed_at = excluded.next_allowed_at`,
      ),
      reset: db.prepare('DELETE FROM latchkey_attempts WHERE key = ?'),
      deleteExpired: db.prepare('DELETE FROM latchkey_attempts WHERE window_end <= ?'),
    };
    this.consumeInTransaction = db.transaction((key: string, now: number, rule: AttemptRule) => {
      const { decision, save } = consumeFrom(this.statements.window.get(key) ?? null, now, rule);
      if (save) this.statements.save.run(attemptValues(key, save));
      return decision;
    });
  }

  /** IMMEDIATE: read and write under the write lock, so processes sharing the file serialise. */
  consume(key: string, now: number, rule: AttemptRule): ThrottleDecision {
    return this.consumeInTransaction.immediate(key, now, rule);
  }

  reset(key: string): void {
    this.statements.reset.run(key);
  }

  deleteExpired(now: number): number {
    return this.statements.deleteExpired.run(now).changes;
  }
}
