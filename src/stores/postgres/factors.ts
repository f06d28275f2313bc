import type { FactorKind, FactorRecord } from '../../core/store.js';
import { FACTOR_COLUMNS, type FactorRow, factorFromRow, factorValues } from '../sql/rows.js';
import type { PostgresDatabase } from './database.js';

/**
 * Second factors in `latchkey_factors`. Every statement names the owner (`user_id`) as well as
 * the id, so another user's factor is no factor; each change is one statement, so atomic: the
 * UPDATE or DELETE locks the row and re-checks its condition after a concurrent change commits.
 */
export class PostgresFactors {
  private readonly table: string;
  private readonly names: string;

  constructor(private readonly db: PostgresDatabase) {
    this.table = db.tables.factors;
    this.names = db.names;
  }

  async create(factor: FactorRecord): Promise<void> {
    await this.db.query({
      name: `${this.names}factor-insert`,
      text: `INSERT INTO ${this.table} (${FACTOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      values: factorValues(factor),
    });
  }

  async list(userId: string): Promise<FactorRecord[]> {
    const { rows } = await this.db.query<FactorRow>({
      name: `${this.names}factors`,
      text: `SELECT ${FACTOR_COLUMNS} FROM ${this.table} WHERE user_id = $1 ORDER BY created_at, id`,
      values: [userId],
    });
    return rows.map(factorFromRow);
  }

  async update(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: `${this.names}factor-update`,
      text: `UPDATE ${this.table} SET name = coalesce($3, name), confirmed = coalesce($4, confirmed)
             WHERE user_id = $1 AND id = $2`,
      values: [userId, id, changes.name ?? null, changes.confirmed ? 1 : null],
    });
    return rowCount === 1;
  }

  /** `counter < $3` is re-checked on the locked row, so of parallel advances to one value one wins. */
  async advanceCounter(userId: string, id: string, counter: number, now: number): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: `${this.names}factor-advance`,
      text: `UPDATE ${this.table} SET counter = $3, last_used_at = $4
             WHERE user_id = $1 AND id = $2 AND counter < $3`,
      values: [userId, id, counter, now],
    });
    return rowCount === 1;
  }

  async delete(userId: string, id: string): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: `${this.names}factor-delete`,
      text: `DELETE FROM ${this.table} WHERE user_id = $1 AND id = $2`,
      values: [userId, id],
    });
    return rowCount === 1;
  }

  /** All of the user's factors, or those of `kind` (a NULL kind matches every row). */
  async deleteByUser(userId: string, kind?: FactorKind): Promise<number> {
    const { rowCount } = await this.db.query({
      name: `${this.names}factors-delete-user`,
      text: `DELETE FROM ${this.table} WHERE user_id = $1 AND ($2::text IS NULL OR kind = $2)`,
      values: [userId, kind ?? null],
    });
    return rowCount ?? 0;
  }
}
