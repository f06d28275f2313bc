import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SqliteStore } from 'latchkey/stores/sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { record } from '../contract/session-store-contract.js';

const run = promisify(execFile);
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-sqlite-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('SqliteStore', () => {
  it('records survive closing and reopening the file', async () => {
    const file = join(dir, 'sessions.db');
    const saved = record({ user: { name: 'Grace' } });
    const first = new SqliteStore(file);
    await first.create(saved);
    await first.close();
    const second = new SqliteStore(file);
    expect(await second.get(saved.id)).toEqual(saved);
    await second.close();
  });

  it('uses WAL and indexes the user id and the expiry', async () => {
    const store = new SqliteStore(join(dir, 'sessions.db'));
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    const indexes = store.db
      .prepare(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'latchkey_sessions'",
      )
      .all()
      .map((row) => (row as { sql: string }).sql);
    expect(indexes.some((sql) => sql.includes('(user_id'))).toBe(true);
    expect(indexes.some((sql) => sql.includes('(idle_expires_at)'))).toBe(true);
    await store.close();
  });

  it('several processes creating sessions for one user on one file respect the cap', async () => {
    const file = join(dir, 'shared.db');
    await new SqliteStore(file).close();
    const child = `
      import { SqliteStore } from ${JSON.stringify(new URL('../../dist/stores/sqlite.js', import.meta.url).href)};
      import { randomBytes } from 'node:crypto';
      const store = new SqliteStore(process.argv[1]);
      const now = Date.now();
      for (let i = 0; i < 40; i++) {
        await store.create({ id: randomBytes(32).toString('base64url'), userId: 'shared-user', createdAt: now + i,
          lastSeenAt: now, idleExpiresAt: now + 3_600_000, absoluteExpiresAt: now + 7_200_000, authenticatedAt: now,
          ip: null, userAgent: null, user: {}, data: {} }, { max: 5, policy: 'evict-oldest' });
      }
      await store.close();`;
    await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ['--input-type=module', '-e', child, file]),
      ),
    );
    const store = new SqliteStore(file);
    expect(await store.listByUser('shared-user', Date.now())).toHaveLength(5);
    await store.close();
  });
});
