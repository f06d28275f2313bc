import type Database from 'better-sqlite3';
import type { FactorKind, FactorRecord } from '../../core/store.js';
import { FACTOR_COLUMNS, type FactorRow, factorFromRow, factorValues } from '../sql/rows.js';

/** Second factors in `latchkey_factors`; each change is one statement, so atomic. */
export class SqliteFactors {
  private readonly statements;

  constructor(db: Database.Database) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO latchkey_factors (${FACTOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      list: db.prepare<[string], FactorRow>(
        `SELECT ${FACTOR_COLUMNS} FROM latchkey_factors WHERE user_id = ? ORDER BY created_at, id`,
      ),
      update: db.prepare(
        `UPDATE latchkey_factors SET name = coalesce(?, name), confirmed = coalesce(?, confirmed)
         WHERE user_id = ? AND id = ?`,
      ),
      advance: db.prepare(
        `UPDATE latchkey_factors SET counter = ?, last_used_at = ?
         WHERE user_id = ? AND id = ? AND counter < ?`,
      ),
      delete: db.prepare('DELETE FROM latchkey_factors WHERE user_id = ? AND id = ?'),
      deleteAll: db.prepare('DELETE FROM latchkey_factors WHERE user_id = ?'),
      deleteKind: db.prepare('DELETE FROM latchkey_factors WHERE user_id = ? AND kind = ?'),
    };
  }

  create(factor: FactorRecord): void {
    this.statements.insert.run(factorValues(factor));
  }

  list(userId: string): FactorRecord[] {
    return this.statements.list.all(userId).map(factorFromRow);
  }

  update(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): boolean {
    const confirmed = changes.confirmed ? 1 : null;
    return this.statements.update.run(changes.name ?? null, confirmed, userId, id).changes > 0;
  }

  advanceCounter(userId: string, id: string, counter: number, now: number): boolean {
    return this.statements.advance.run(counter, now, userId, id, counter).changes > 0;
  }

  delete(userId: string, id: string): boolean {
    return this.statements.delete.run(userId, id).changes > 0;
  }

  deleteByUser(userId: string, kind?: FactorKind): number {
    const { deleteAll, deleteKind } = this.statements;
    return (kind === undefined ? deleteAll.run(userId) : deleteKind.run(userId, kind)).changes;
  }
}
