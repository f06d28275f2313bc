import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { ConfigError } from 'latchkey';
import { SqliteStore } from 'latchkey/stores/sqlite';
import { record } from 'latchkey/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

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

  it('a file from before assurance levels gains aal/amr on open; its sessions read as level 1', async () => {
    const file = join(dir, 'old.db');
    const old = record();
    const db = new Database(file);
    // The session table as versions without assurance levels created it.
    db.exec(`CREATE TABLE latchkey_sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
      created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, idle_expires_at INTEGER NOT NULL,
      absolute_expires_at INTEGER NOT NULL, authenticated_at INTEGER NOT NULL, ip TEXT,
      user_agent TEXT, user TEXT NOT NULL, data TEXT NOT NULL) WITHOUT ROWID`);
    db.prepare('INSERT INTO latchkey_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      old.id,
      old.userId,
      old.createdAt,
      old.lastSeenAt,
      old.idleExpiresAt,
      old.absoluteExpiresAt,
      old.authenticatedAt,
      old.ip,
      old.userAgent,
      JSON.stringify(old.user),
      '{}',
    );
    db.close();
    // Two stores opening the old file at once: each column is added once, neither fails.
    const [store, other] = [new SqliteStore(file), new SqliteStore(file)];
    expect(await store.get(old.id)).toEqual({ ...old, aal: 1, amr: [] });
    const stepped = record({ aal: 2, amr: ['pwd', 'otp', 'mfa'] });
    await other.create(stepped);
    expect(await store.get(stepped.id)).toEqual(stepped);
    await Promise.all([store.close(), other.close()]);
  });

  it('an amr naming an unknown method or a level other than 1 or 2 reads as no session', async () => {
    const store = new SqliteStore(join(dir, 'sessions.db'));
    const bad = [record(), record()];
    for (const r of bad) await store.create(r);
    store.db.prepare("UPDATE latchkey_sessions SET amr = 'pwd sms' WHERE id = ?").run(bad[0]?.id);
    store.db.prepare('UPDATE latchkey_sessions SET aal = 3 WHERE id = ?').run(bad[1]?.id);
    for (const r of bad) expect(await store.get(r.id)).toBeNull();
    await store.close();
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

  it('several processes creating capped sessions for one user on one file never pass the cap', async () => {
    const file = join(dir, 'shared.db');
    await new SqliteStore(file).close();
    const child = `
      import { SqliteStore } from ${JSON.stringify(new URL('../../dist/stores/sqlite/index.js', import.meta.url).href)};
      import { randomBytes } from 'node:crypto';
      const store = new SqliteStore(process.argv[1]);
      const now = Date.now();
      let created = 0;
      for (let i = 0; i < 40; i++) {
        const record = { id: randomBytes(32).toString('base64url'), userId: 'shared-user', createdAt: now + i,
          lastSeenAt: now, idleExpiresAt: now + 3_600_000, absoluteExpiresAt: now + 7_200_000, authenticatedAt: now,
          aal: 1, amr: [], ip: null, userAgent: null, user: {}, data: {} };
        if (await store.createCapped(record, 5)) created++;
      }
      await store.close();
      process.stdout.write(String(created));`;
    const runs = await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ['--input-type=module', '-e', child, file]),
      ),
    );
    expect(runs.reduce((sum, { stdout }) => sum + Number(stdout), 0)).toBe(5);
    const store = new SqliteStore(file);
    expect(await store.listByUser('shared-user', Date.now())).toHaveLength(5);
    await store.close();
  });

  it('several processes logging one user in on one file (evict-oldest) respect the cap', async () => {
    const file = join(dir, 'shared.db');
    await new SqliteStore(file).close();
    const child = `
      import { Sessions } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
      import { SqliteStore } from ${JSON.stringify(new URL('../../dist/stores/sqlite/index.js', import.meta.url).href)};
      const store = new SqliteStore(process.argv[1]);
      const sessions = new Sessions({ store, maxSessionsPerUser: 5 });
      for (let i = 0; i < 40; i++) await sessions.create('shared-user');
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
      import { SqliteStore } from ${JSON.stringify(new URL('../../dist/stores/sqlite/index.js', import.meta.url).href)};
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

  it('a row that does not decode reads as no session, and lists leave it out', async () => {
    const store = new SqliteStore(join(dir, 'sessions.db'));
    const good = record();
    await store.create(good);
    const insert = store.db.prepare(
      `INSERT INTO latchkey_sessions (id, user_id, created_at, last_seen_at, idle_expires_at,
         absolute_expires_at, authenticated_at, ip, user_agent, user, data)
       VALUES (@id, @userId, @createdAt, @lastSeenAt, @idleExpiresAt, @absoluteExpiresAt,
         @authenticatedAt, @ip, @userAgent, @user, @data)`,
    );
    const json = { user: '{}', data: '{}' };
    const bad = [
      { ...json, user: '{"name": "Ada"' },
      { ...json, data: 'not json' },
      { ...json, data: '[1, 2]' },
      { ...json, user: 'null' },
      { ...json, user: '"Ada"' },
      { ...json, createdAt: 'yesterday' },
      { ...json, lastSeenAt: '12:00' },
      { ...json, userId: Buffer.from('user-1') },
      { ...json, userAgent: Buffer.from('curl') },
    ];
    const ids: string[] = [];
    for (const columns of bad) {
      const { id, ...fields } = record();
      insert.run({ ...fields, ...columns, id });
      ids.push(id);
    }
    for (const id of ids) expect(await store.get(id)).toBeNull();
    // In one batch, the good record is unaffected by its neighbours.
    const batch = await Promise.all([...ids, good.id].map((id) => store.get(id)));
    expect(batch).toEqual([...ids.map(() => null), good]);
    expect(await store.listByUser(good.userId, good.createdAt)).toEqual([good]);
    await store.close();
  });

  it('refuses bad options with a ConfigError that names them', () => {
    for (const busyTimeout of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5000']) {
      expect(() => new SqliteStore(':memory:', { busyTimeout } as never)).toThrow(ConfigError);
      expect(() => new SqliteStore(':memory:', { busyTimeout } as never)).toThrow(/busyTimeout/);
    }
    for (const file of [42, null, undefined, {}]) {
      expect(() => new SqliteStore(file as never)).toThrow(ConfigError);
      expect(() => new SqliteStore(file as never)).toThrow(/file/);
    }
    expect(() => new SqliteStore(join(dir, 'no-such-dir', 'sessions.db'))).toThrow(ConfigError);
    expect(() => new SqliteStore(':memory:', null as never)).toThrow(ConfigError);
  });

  it('an open database passed in is left open by close', async () => {
    const store = new SqliteStore(join(dir, 'sessions.db'));
    const shared = new SqliteStore(store.db);
    const created = record();
    await shared.create(created);
    await shared.close();
    expect(await store.get(created.id)).toEqual(created);
    await store.close();
    expect(store.db.open).toBe(false);
  });
});
