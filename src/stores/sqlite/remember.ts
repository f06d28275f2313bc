import type Database from 'better-sqlite3';
import type { RememberRecord } from '../../core/store.js';
import {
  REMEMBER_COLUMNS,
  type RememberRow,
  rememberFromRow,
  rememberValues,
} from '../sql/rows.js';

/** Remember-me tokens in `latchkey_remember`. */
export class SqliteRemember {
  private readonly statements;
  private readonly rotateInTransaction;

  constructor(db: Database.Database) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO latchkey_remember (${REMEMBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      find: db.prepare<[string], RememberRow>(
        `SELECT ${REMEMBER_COLUMNS} FROM latchkey_remember WHERE selector = ?`,
      ),
      replace: db.prepare(
        `UPDATE latchkey_remember SET replaced_by = ?, replaced_at = ?
         WHERE selector = ? AND replaced_by IS NULL`,
      ),
      delete: db.prepare('DELETE FROM latchkey_remember WHERE selector = ?'),
      deleteByUser: db.prepare('DELETE FROM latchkey_remember WHERE user_id = ?'),
      deleteExpired: db.prepare('DELETE FROM latchkey_remember WHERE expires_at <= ?'),
    };
    this.rotateInTransaction = db.transaction(
      (selector: string, successor: RememberRecord, now: number): boolean => {
        if (this.statements.replace.run(successor.selector, now, selector).changes === 0) {
          return false;
        }
        this.create(successor);
        return true;
      },
    );
  }

  create(record: RememberRecord): void {
    this.statements.insert.run(rememberValues(record));
  }

  find(selector: string): RememberRecord | null {
    const row = this.statements.find.get(selector);
    return row ? rememberFromRow(row) : null;
  }

  /** IMMEDIATE: the check and both writes under the write lock (processes sharing the file). */
  rotate(selector: string, successor: RememberRecord, now: number): boolean {
    return this.rotateInTransaction.immediate(selector, successor, now);
  }

  delete(selector: string): boolean {
    return this.statements.delete.run(selector).changes > 0;
  }

  deleteByUser(userId: string): number {
    return this.statements.deleteByUser.run(userId).changes;
  }

  deleteExpired(now: number): number {
    return this.statements.deleteExpired.run(now).changes;
  }
}
