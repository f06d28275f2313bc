import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from 'latchkey/stores/sqlite';
import { describeLatchkeyStore, record } from 'latchkey/testing';

let dir = '';
describeLatchkeyStore('sqlite', {
  async open() {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-contract-'));
    return new SqliteStore(join(dir, 'latchkey.db'));
  },
  async cleanup() {
    rmSync(dir, { recursive: true, force: true });
  },
  // A row whose `user` is not JSON, as a hand edit or another program could leave it.
  async corrupt(store, id) {
    const row = { ...record({ id }), user: '{"name": "Ada"' };
    store.db
      .prepare(
        `INSERT INTO latchkey_sessions (id, user_id, created_at, last_seen_at, idle_expires_at,
           absolute_expires_at, authenticated_at, ip, user_agent, user, data)
         VALUES (@id, @userId, @createdAt, @lastSeenAt, @idleExpiresAt, @absoluteExpiresAt,
           @authenticatedAt, @ip, @userAgent, @user, '{}')`,
      )
      .run(row);
  },
});
