import { existsSync } from 'node:fs';
import { Latchkey } from 'latchkey';
import { SqliteStore } from 'latchkey/stores/sqlite';
import { factor, T0 } from 'latchkey/testing';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addUser, runCli, tempDir } from '../helpers/cli.js';
import { POSTGRES_URL, postgresUnavailable, randomSchema } from '../helpers/postgres-server.js';

const PASSWORD = 'correct horse battery';
// Every test has a directory (and SQLite file) of its own: no test sees another's users or sessions.
let temp: ReturnType<typeof tempDir>;
let db: string[];
beforeEach(() => {
  temp = tempDir();
  db = ['--db', temp.db];
});
afterEach(() => temp.remove());

/** Opens the same SQLite file the CLI writes, as a server would. */
async function withLatchkey<T>(
  task: (auth: Latchkey, store: SqliteStore) => Promise<T>,
): Promise<T> {
  const store = new SqliteStore(temp.db);
  try {
    return await task(new Latchkey({ store, users: store }), store);
  } finally {
    await store.close();
  }
}

const COMMANDS = [
  'user add',
  'user list',
  'user remove',
  'user passwd',
  'user disable',
  'user enable',
  'user mfa list',
  'user mfa reset',
  'sessions list',
  'sessions revoke',
  'sessions revoke-user',
  'sweep',
  'migrate',
  'config check',
  'serve',
];

describe('latchkey CLI: help and exit codes', () => {
  it.each(COMMANDS)('%s --help prints its usage and exits 0', async (command) => {
    const result = await runCli([...command.split(' '), '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: latchkey ${command}`);
    expect(result.stderr).toBe('');
  });

  it('--help and -h at the top list every command', async () => {
    for (const flag of ['--help', '-h']) {
      const result = await runCli([flag]);
      expect(result.code).toBe(0);
      for (const command of COMMANDS) expect(result.stdout).toContain(command);
    }
  });

  it.each([
    [[], /missing command/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['user'], /missing command/],
    [['user', 'rename', 'a'], /unknown command "user rename"/],
    [['user', 'add'], /expected <name>, got none/],
    [['user', 'remove', 'a', 'b'], /expected <name>, got a b/],
    [['sessions', 'list', '--user'], /--user/],
    [['sweep', '--force'], /Unknown option '--force'/],
  ])('usage error %j exits 2 with the reason on stderr', async (args, reason) => {
    const result = await runCli([...args, ...db]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(reason);
    expect(result.stdout).toBe('');
  });

  it('user add without --password-stdin and without a terminal is a usage error', async () => {
    const result = await runCli(['user', 'add', 'ada', ...db]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--password-stdin/);
  });
});

describe('latchkey user', () => {
  it('add reads the password from stdin, stores an argon2id hash and never prints it', async () => {
    const result = await runCli(['user', 'add', 'Ada', '--password-stdin', ...db], {
      input: `${PASSWORD}\n`,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^created Ada \([0-9a-f-]{36}\)\n$/);
    const hash = await withLatchkey(
      async (_auth, store) => (await store.findUserByKey('ada'))?.passwordHash,
    );
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
    const login = await withLatchkey((auth) => auth.login({ username: 'ada', password: PASSWORD }));
    expect(login.ok).toBe(true);
  });

  it('add refuses a taken name (any case), a short password and a bad name with exit 1', async () => {
    await addUser(temp.db, 'taken', PASSWORD);
    const taken = await runCli(['user', 'add', 'TAKEN', '--password-stdin', ...db], {
      input: PASSWORD,
    });
    expect(taken).toMatchObject({ code: 1, stderr: 'latchkey: That username is taken.\n' });
    const short = await runCli(['user', 'add', 'shorty', '--password-stdin', ...db], {
      input: 'short\n',
    });
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/at least 8 characters/);
    const bad = await runCli(['user', 'add', 'tab\tname', '--password-stdin', ...db], {
      input: PASSWORD,
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Username must be/);
  });

  it('list shows accounts as a table or JSON lines, never a hash', async () => {
    await addUser(temp.db, 'lister', PASSWORD);
    const table = await runCli(['user', 'list', ...db]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^USERNAME\s+ID\s+CREATED\s+STATUS$/);
    expect(table.stdout).toMatch(/lister\s+[0-9a-f-]{36}\s+\S+Z\s+active/);
    const json = await runCli(['user', 'list', '--json', ...db]);
    const users = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(users.find((user) => user.username === 'lister')).toMatchObject({ disabled: false });
    expect(json.stdout).not.toContain('argon2');
  });

  it('disable ends every session and blocks login; enable allows it again', async () => {
    await addUser(temp.db, 'dis', PASSWORD);
    await withLatchkey((auth) => auth.login({ username: 'dis', password: PASSWORD }));
    const result = await runCli(['user', 'disable', 'dis', ...db]);
    expect(result).toMatchObject({ code: 0, stdout: 'disabled dis; their sessions were ended\n' });
    await withLatchkey(async (auth) => {
      const user = await auth.findUser('dis');
      expect(user?.disabled).toBe(true);
      expect(await auth.listSessions(user?.id ?? '')).toEqual([]);
      expect((await auth.login({ username: 'dis', password: PASSWORD })).ok).toBe(false);
    });
    expect((await runCli(['user', 'enable', 'dis', ...db])).code).toBe(0);
    const login = await withLatchkey((auth) => auth.login({ username: 'dis', password: PASSWORD }));
    expect(login.ok).toBe(true);
  });

  it('passwd sets a new password and ends the sessions; remove deletes the account', async () => {
    await addUser(temp.db, 'pw', PASSWORD);
    await withLatchkey((auth) => auth.login({ username: 'pw', password: PASSWORD }));
    const changed = await runCli(['user', 'passwd', 'pw', '--password-stdin', ...db], {
      input: 'another long passphrase\r\n',
    });
    expect(changed.code).toBe(0);
    await withLatchkey(async (auth) => {
      expect(await auth.listSessions((await auth.findUser('pw'))?.id ?? '')).toEqual([]);
      expect((await auth.login({ username: 'pw', password: PASSWORD })).ok).toBe(false);
      expect((await auth.login({ username: 'pw', password: 'another long passphrase' })).ok).toBe(
        true,
      );
    });
    expect((await runCli(['user', 'remove', 'pw', ...db])).stdout).toBe('removed pw\n');
    expect(await withLatchkey((auth) => auth.findUser('pw'))).toBeNull();
  });

  it('mfa list shows the factors, never a secret; mfa reset removes them all, audited', async () => {
    await addUser(temp.db, 'mfa', PASSWORD);
    const userId = await withLatchkey(async (auth, store) => {
      const id = (await auth.findUser('mfa'))?.id ?? '';
      await store.createFactor(factor({ userId: id, secret: 'SEALED-TOTP-SECRET' }));
      await store.createFactor(
        factor({ userId: id, kind: 'passkey', name: 'YubiKey', createdAt: T0 + 1 }),
      );
      for (let n = 0; n < 3; n++) {
        await store.createFactor(
          factor({ userId: id, kind: 'recovery', name: '', secret: `HASH${n}` }),
        );
      }
      return id;
    });
    const table = await runCli(['user', 'mfa', 'list', 'mfa', ...db]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^KIND\s+NAME\s+ID\s+ADDED\s+LAST USED$/);
    expect(table.stdout).toMatch(/^totp\s+Phone\s+\S+\s+\S+Z\s+never$/m);
    expect(table.stdout).toMatch(/^passkey\s+YubiKey\s/m);
    expect(table.stdout).toMatch(/^recovery\s+3 codes left/m);
    const json = await runCli(['user', 'mfa', 'list', 'mfa', '--json', ...db]);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((line) => line.kind)).toEqual(['totp', 'passkey', 'recovery']);
    expect(lines[2]).toEqual({ kind: 'recovery', left: 3 });
    for (const output of [table.stdout, json.stdout]) {
      expect(output).not.toMatch(/SEALED-TOTP-SECRET|HASH\d/);
    }

    const reset = await runCli(['user', 'mfa', 'reset', 'mfa', ...db]);
    expect(reset).toMatchObject({
      code: 0,
      stdout: 'removed 5 second factors and recovery codes of mfa\n',
    });
    const audit = JSON.parse(reset.stderr.trim());
    expect(audit).toMatchObject({ event: 'second_factor_removed', userId, by: 'admin' });
    expect(await withLatchkey((_auth, store) => store.listFactors(userId))).toEqual([]);
    const after = await runCli(['user', 'mfa', 'list', 'mfa', ...db]);
    expect(after.stdout).toMatch(/^recovery\s+0 codes left/m);
    expect(after.stdout).not.toMatch(/^(totp|passkey)\s/m);
  });

  it.each([['remove'], ['passwd'], ['disable'], ['enable'], ['mfa list'], ['mfa reset']])(
    'user %s on an unknown name exits 1',
    async (command) => {
      const password = command === 'passwd' ? ['--password-stdin'] : [];
      const result = await runCli(['user', ...command.split(' '), 'nobody', ...password, ...db], {
        input: PASSWORD,
      });
      expect(result).toMatchObject({ code: 1, stderr: 'latchkey: no user named "nobody"\n' });
    },
  );
});

describe('latchkey sessions and sweep', () => {
  it('takes a session id that begins with "-" as the id, not as options', async () => {
    const id = await withLatchkey(async (auth) => {
      for (;;) {
        const { session } = await auth.create('dash-user');
        if (session.id.startsWith('-')) return session.id;
      }
    });
    const revoked = await runCli(['sessions', 'revoke', id, ...db]);
    expect(revoked).toMatchObject({ code: 0, stdout: 'revoked 1 session\n' });
    expect(await withLatchkey((auth) => auth.listSessions('dash-user'))).not.toContainEqual(
      expect.objectContaining({ id }),
    );
  });

  it('list, revoke and revoke-user act on the shared file', async () => {
    await addUser(temp.db, 'sess', PASSWORD);
    const [a, b] = await withLatchkey(async (auth) => [
      await auth.login(
        { username: 'sess', password: PASSWORD },
        { ip: '203.0.113.5', userAgent: 'Lynx' },
      ),
      await auth.login({ username: 'sess', password: PASSWORD }),
    ]);
    if (!a?.ok || !b?.ok) throw new Error('login failed');

    const listed = await runCli(['sessions', 'list', '--user', 'sess', ...db]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(
      /^ID\s+USER\s+CREATED\s+LAST SEEN\s+IP\s+USER AGENT$/,
    );
    expect(listed.stdout).toContain(a.session.id);
    expect(listed.stdout).toMatch(/203\.0\.113\.5\s+Lynx/);
    const all = await runCli(['sessions', 'list', '--json', ...db]);
    expect(all.stdout).toContain(b.session.id);

    expect((await runCli(['sessions', 'revoke', a.session.id, ...db])).stdout).toBe(
      'revoked 1 session\n',
    );
    const again = await runCli(['sessions', 'revoke', a.session.id, ...db]);
    expect(again.code).toBe(1);
    const revoked = await runCli(['sessions', 'revoke-user', 'sess', ...db]);
    expect(revoked.stdout).toBe('revoked 1 session of sess\n');
    expect(await withLatchkey((auth) => auth.listSessions(b.session.userId))).toEqual([]);
    const unknown = await runCli(['sessions', 'list', '--user', 'nobody', ...db]);
    expect(unknown.code).toBe(1);
  });

  it('sweep deletes expired sessions and prints how many', async () => {
    const store = new SqliteStore(temp.db);
    const past = new Latchkey({
      store,
      users: store,
      idleTimeout: '1s',
      clock: () => Date.now() - 60_000,
    });
    await past.create('sweep-user');
    await past.create('sweep-user');
    await store.close();
    const result = await runCli(['sweep', ...db]);
    expect(result).toMatchObject({ code: 0, stdout: '2\n' });
    expect((await runCli(['sweep', ...db])).stdout).toBe('0\n');
  });

  it('LATCHKEY_DB is the default database, like --db', async () => {
    await addUser(temp.db, 'envy', PASSWORD);
    const result = await runCli(['user', 'list', '--json'], { env: { LATCHKEY_DB: temp.db } });
    expect(result.stdout).toContain('"username":"envy"');
  });
});

const postgres = await postgresUnavailable();

describe('latchkey migrate', () => {
  it('on the SQLite file there is nothing to migrate', async () => {
    const result = await runCli(['migrate', ...db]);
    expect(result).toMatchObject({
      code: 0,
      stdout: 'nothing to migrate: only PostgreSQL stores have migrations\n',
      stderr: '',
    });
  });

  it.skipIf(postgres !== null && process.env.LATCHKEY_REQUIRE_SERVICES !== '1')(
    'on a new PostgreSQL database applies the schema once; a second run finds it up to date',
    async () => {
      if (postgres !== null) throw new Error(postgres);
      const name = randomSchema();
      await adminQuery(`CREATE DATABASE ${name}`);
      try {
        const url = new URL(POSTGRES_URL);
        url.pathname = `/${name}`;
        const store = ['--store', url.toString()];
        const first = await runCli(['migrate', ...store, ...db]);
        expect(first).toMatchObject({
          code: 0,
          stdout: 'applied migrations 1, 2; schema at version 2\n',
        });
        const again = await runCli(['migrate', ...store, ...db]);
        expect(again).toMatchObject({ code: 0, stdout: 'schema up to date (version 2)\n' });
        const tables = await adminQuery(
          `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'latchkey'`,
          url.toString(),
        );
        expect(tables[0]?.n).toBeGreaterThanOrEqual(4);
      } finally {
        await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }
    },
  );

  it('an unreachable store fails with exit 1 and the password masked', async () => {
    const result = await runCli([
      'migrate',
      '--store',
      'postgres://app:hunter2@127.0.0.1:1/none',
      ...db,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot reach/);
    expect(result.stdout + result.stderr).not.toContain('hunter2');
  });
});

describe('latchkey config check', () => {
  it('prints each setting with its source, and where sessions and users live', async () => {
    const result = await runCli(['config', 'check', '--idle-timeout', '5m', ...db], {
      env: { LATCHKEY_TOUCH_INTERVAL: '30s' },
    });
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(/^KEY\s+VALUE\s+FROM$/);
    expect(result.stdout).toMatch(/^idleTimeout\s+5m\s+--idle-timeout$/m);
    expect(result.stdout).toMatch(/^touchInterval\s+30s\s+LATCHKEY_TOUCH_INTERVAL$/m);
    expect(result.stdout).toMatch(/^absoluteTimeout\s+12h\s+default$/m);
    expect(result.stdout).toMatch(/^rememberGrace\s+10s\s+default$/m);
    expect(result.stdout).toMatch(new RegExp(`^sessions\\s.*${temp.db}`, 'm'));
    expect(result.stderr).toBe('');
  });

  it('contacts no store and creates no file', async () => {
    const result = await runCli([
      'config',
      'check',
      '--json',
      '--store',
      'postgres://app:hunter2@127.0.0.1:1/none',
      ...db,
    ]);
    expect(result.code).toBe(0);
    const shown = JSON.parse(result.stdout);
    expect(shown.store).toBe('postgres://app:***@127.0.0.1:1/none');
    expect(shown.stores.sessions.at).not.toContain('hunter2');
    expect(existsSync(temp.db)).toBe(false);
  });

  it.each([
    [['--idle-timeout', 'soon'], /idleTimeout|--idle-timeout/],
    [['--idle-timeout', '2h', '--absolute-timeout', '1h'], /must not exceed/],
    [['--remember-grace', '2m'], /rememberGrace \(--remember-grace 2m\) must be at most 1m/],
    [['--port', '70000'], /is not a port number/],
  ])('a bad setting %j exits 2 with the key and the reason', async (args, reason) => {
    const result = await runCli(['config', 'check', ...args, ...db]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(reason);
    expect(result.stdout).toBe('');
  });
});

/** One statement on the shared PostgreSQL server (or the database at `url`). */
async function adminQuery(text: string, url = POSTGRES_URL): Promise<Array<{ n?: number }>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}
