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

  it('several processes updating one session’s data on one file lose no key', async () => {
    const file = join(dir, 'shared.db');
    const shared = record({ data: { start: true } });
    const setup = new SqliteStore(file);
    await setup.create(shared);
    await setup.close();
    const child = `
      import { SqliteStore } from ${JSON.stringify(new URL('../../dist/stores/sqlite.js', import.meta.url).href)};
      const [file, id, worker] = process.argv.slice(1);
      const store = new SqliteStore(file);
      for (let i = 0; i < 50; i++) {
        const answer = await store.updateData(id, { set: { [worker + '-' + i]: [i, { worker }] },
          remove: i === 0 ? ['start'] : [], maxBytes: 65536 });
        if (answer !== 'updated') throw new Error(answer);
      }
      await store.close();`;
    await Promise.all(
      Array.from({ length: 4 }, (_, w) =>
        run(process.execPath, ['--input-type=module', '-e', child, file, shared.id, `w${w}`]),
      ),
    );
    const store = new SqliteStore(file);
    const data = (await store.get(shared.id))?.data ?? {};
    expect(Object.keys(data)).toHaveLength(200);
    expect(data['w3-49']).toEqual([49, { worker: 'w3' }]);
    expect(await store.get(shared.id)).toEqual({ ...shared, data });
    await store.close();
  });
});
