import type { UserRecord } from '../../core/store.js';
import { flag, USER_COLUMNS, type UserRow, userFromRow, userValues } from '../sql/rows.js';
import type { PostgresDatabase } from './database.js';

/** Accounts in `latchkey_users`; the UNIQUE username key makes creation atomic. */
export class PostgresUsers {
  private readonly table: string;
  private readonly names: string;

  constructor(private readonly db: PostgresDatabase) {
    this.table = db.tables.users;
    this.names = db.names;
  }

  async create(user: UserRecord): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: `${this.names}user-insert`,
      text: `INSERT INTO ${this.table} (${USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT DO NOTHING`,
      values: userValues(user),
    });
    return rowCount === 1;
  }

  async findById(id: string): Promise<UserRecord | null> {
    const { rows } = await this.db.query<UserRow>({
      name: `${this.names}user-by-id`,
      text: `SELECT ${USER_COLUMNS} FROM ${this.table} WHERE id = $1`,
      values: [id],
    });
    return rows[0] ? userFromRow(rows[0]) : null;
  }

  async findByKey(usernameKey: string): Promise<UserRecord | null> {
    const { rows } = await this.db.query<UserRow>({
      name: `${this.names}user-by-key`,
      text: `SELECT ${USER_COLUMNS} FROM ${this.table} WHERE username_key = $1`,
      values: [usernameKey],
    });
    return rows[0] ? userFromRow(rows[0]) : null;
  }

  async list(): Promise<UserRecord[]> {
    const { rows } = await this.db.query<UserRow>({
      text: `SELECT ${USER_COLUMNS} FROM ${this.table} ORDER BY created_at, id`,
    });
    return rows.map(userFromRow);
  }

  async update(
    id: string,
    changes: { passwordHash?: string; disabled?: boolean },
  ): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: `${this.names}user-update`,
      text: `UPDATE ${this.table} SET password_hash = coalesce($2, password_hash),
               disabled = coalesce($3, disabled) WHERE id = $1`,
      values: [
        id,
        changes.passwordHash ?? null,
        changes.disabled === undefined ? null : flag(changes.disabled),
      ],
    });
    return rowCount === 1;
  }

  /** Takes the user's second factors with the account, in the same statement (so atomically). */
  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: `${this.names}user-delete`,
      text: `WITH factors AS (DELETE FROM ${this.db.tables.factors} WHERE user_id = $1)
             DELETE FROM ${this.table} WHERE id = $1`,
      values: [id],
    });
    return rowCount === 1;
  }
}
