import type { RememberRecord } from '../../core/store.js';
import {
  REMEMBER_COLUMNS,
  type RememberRow,
  rememberFromRow,
  rememberValues,
} from '../sql/rows.js';
import type { PostgresDatabase } from './database.js';

/** Remember-me tokens in `latchkey_remember`. */
export class PostgresRemember {
  private readonly table: string;
  private readonly names: string;

  constructor(private readonly db: PostgresDatabase) {
    this.table = db.tables.remember;
    this.names = db.names;
  }

  async create(record: RememberRecord): Promise<void> {
    await this.db.query({
      name: `${this.names}remember-insert`,
      text: `INSERT INTO ${this.table} (${REMEMBER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      values: rememberValues(record),
    });
  }

  async find(selector: string): Promise<RememberRecord | null> {
    const { rows } = await this.db.query<RememberRow>({
      name: `${this.names}remember`,
      text: `SELECT ${REMEMBER_COLUMNS} FROM ${this.table} WHERE selector = $1`,
      values: [selector],
    });
    return rows[0] ? rememberFromRow(rows[0]) : null;
  }

  /**
   * One statement: the UPDATE locks the old token's row and re-checks `replaced_by IS NULL` after
   * any concurrent rotation commits, and the successor is inserted only if that UPDATE matched.
   */
  async rotate(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: `${this.names}remember-rotate`,
      text: `WITH replaced AS (UPDATE ${this.table} SET replaced_by = $1, replaced_at = $8
               WHERE selector = $9 AND replaced_by IS NULL RETURNING 1)
             INSERT INTO ${this.table} (${REMEMBER_COLUMNS})
             SELECT $1, $2, $3, $4, $5, $6, $7 FROM replaced`,
      values: [...rememberValues(successor), now, selector],
    });
    return rowCount === 1;
  }

  async delete(selector: string): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: `${this.names}remember-delete`,
      text: `DELETE FROM ${this.table} WHERE selector = $1`,
      values: [selector],
    });
    return rowCount === 1;
  }

  async deleteByUser(userId: string): Promise<number> {
    const { rowCount } = await this.db.query({
      name: `${this.names}remember-delete-user`,
      text: `DELETE FROM ${this.table} WHERE user_id = $1`,
      values: [userId],
    });
    return rowCount ?? 0;
  }

  deleteExpired(now: number): Promise<number> {
    return this.db.sweep('remember', this.table, 'selector', 'expires_at', now);
  }
}
