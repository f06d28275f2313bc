import type Database from 'better-sqlite3';
import type { UserRecord } from '../../core/store.js';
import { flag, USER_COLUMNS, type UserRow, userFromRow, userValues } from '../sql/rows.js';

/** Accounts in `latchkey_users`; the UNIQUE username key makes creation atomic. */
export class SqliteUsers {
  private readonly statements;

  constructor(db: Database.Database) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO latchkey_users (${USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      byId: db.prepare<[string], UserRow>(
        `SELECT ${USER_COLUMNS} FROM latchkey_users WHERE id = ?`,
      ),
      byKey: db.prepare<[string], UserRow>(
        `SELECT ${USER_COLUMNS} FROM latchkey_users WHERE username_key = ?`,
      ),
      all: db.prepare<[], UserRow>(
        `SELECT ${USER_COLUMNS} FROM latchkey_users ORDER BY created_at, id`,
      ),
      update: db.prepare(
        `UPDATE latchkey_users SET password_hash = coalesce(?, password_hash),
           disabled = coalesce(?, disabled) WHERE id = ?`,
      ),
      delete: db.prepare('DELETE FROM latchkey_users WHERE id = ?'),
    };
  }

  create(user: UserRecord): boolean {
    return this.statements.insert.run(userValues(user)).changes > 0;
  }

  findById(id: string): UserRecord | null {
    const row = this.statements.byId.get(id);
    return row ? userFromRow(row) : null;
  }

  findByKey(usernameKey: string): UserRecord | null {
    const row = this.statements.byKey.get(usernameKey);
    return row ? userFromRow(row) : null;
  }

  list(): UserRecord[] {
    return this.statements.all.all().map(userFromRow);
  }

  update(id: string, changes: { passwordHash?: string; disabled?: boolean }): boolean {
    const disabled = changes.disabled === undefined ? null : flag(changes.disabled);
    return this.statements.update.run(changes.passwordHash ?? null, disabled, id).changes > 0;
  }

  delete(id: string): boolean {
    return this.statements.delete.run(id).changes > 0;
  }
}
