import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, runCli, tempDir, useServe } from '../helpers/cli.js';
import { apiLogin, cookieOf, PASSWORD } from './support.js';

const temp = tempDir();
beforeAll(() => addUser(temp.db, 'ada', PASSWORD));
afterAll(() => temp.remove());

const startServe = useServe();

let files = 0;
function configFile(settings: unknown): string {
  const file = join(temp.dir, `latchkey-${++files}.json`);
  writeFileSync(file, typeof settings === 'string' ? settings : JSON.stringify(settings));
  return file;
}

describe('configuration: flags > LATCHKEY_* > --config file > defaults, one schema', () => {
  it('serve reads the config file; the environment and flags win over it', async () => {
    const file = configFile({
      cookieName: '__Host-fromfile',
      allowSignup: true,
      idleTimeout: '5m',
    });
    const server = await startServe(['--db', temp.db, '--config', file]);
    expect(cookieOf(await apiLogin(server.url, 'ada'))).toMatch(/^__Host-fromfile=/);
    expect((await fetch(`${server.url}/signup`)).status).toBe(200);

    const checked = await runCli(['config', 'check', '--json', '--config', file, '--db', temp.db], {
      env: { LATCHKEY_COOKIE_NAME: '__Host-fromenv', LATCHKEY_IDLE_TIMEOUT: '7m' },
    });
    expect(checked.code).toBe(0);
    expect(JSON.parse(checked.stdout)).toMatchObject({
      cookieName: '__Host-fromenv',
      idleTimeout: '7m',
      allowSignup: true,
      absoluteTimeout: '12h',
      db: temp.db,
    });
    const flagged = await runCli(['config', 'check', '--config', file, '--idle-timeout', '9m'], {
      env: { LATCHKEY_IDLE_TIMEOUT: '7m', LATCHKEY_CONFIG: '/nonexistent.json' },
    });
    expect(flagged.code).toBe(0);
    expect(flagged.stdout).toMatch(/^idleTimeout\s+9m\s+--idle-timeout$/m);
    expect(flagged.stdout).toMatch(/^allowSignup\s+true\s+\S+latchkey-\d+\.json$/m);
    expect(flagged.stdout).toMatch(/^port\s+3000\s+default$/m);
  });

  it.each([
    [{ idleTimout: '5m' }, /unknown key "idleTimout"/],
    [{ 'idle-timeout': '5m' }, /unknown key "idle-timeout" \(did you mean "idleTimeout"\?\)/],
    [
      { idleTimeout: '13h' },
      /idleTimeout \("13h" in \S+\) must not exceed absoluteTimeout \(default 12h\)/,
    ],
    [{ port: 'eighty' }, /latchkey-\d+\.json: port: "eighty" is not a port number/],
    [{ sweepInterval: 'often' }, /sweepInterval: "often" is not a duration/],
    [{ trustProxy: ['10.0.0.1', 'proxy'] }, /trustProxy: "proxy" is not an IP address/],
    [{ logLevel: 'loud' }, /logLevel: "loud" is not one of fatal, error/],
    ['{ not json', /not valid JSON/],
    ['[1]', /must hold a JSON object/],
  ])('a bad config file %j exits 2 naming the key', async (settings, reason) => {
    const file = configFile(settings);
    for (const command of [['serve'], ['config', 'check']]) {
      const result = await runCli([...command, '--db', temp.db, '--config', file]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(reason);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('idle > absolute from flags and the environment names both keys and where they were set', async () => {
    const result = await runCli(['serve', '--db', temp.db, '--absolute-timeout', '1h'], {
      env: { LATCHKEY_IDLE_TIMEOUT: '2h' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /idleTimeout \(LATCHKEY_IDLE_TIMEOUT=2h\) must not exceed absoluteTimeout \(--absolute-timeout 1h\)/,
    );
    const badEnv = await runCli(['serve', '--db', temp.db], {
      env: { LATCHKEY_METRICS_PORT: 'x' },
    });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(
      /--metrics-port: "x" is not a port number .*LATCHKEY_METRICS_PORT/,
    );
    const missingFile = await runCli(['serve', '--db', temp.db, '--config', '/nonexistent.json']);
    expect(missingFile.code).toBe(2);
    expect(missingFile.stderr).toMatch(/--config \/nonexistent\.json: cannot read it/);
  });

  it('an unreachable store exits non-zero naming store, its password masked', async () => {
    for (const url of [
      'redis://:hunter2@127.0.0.1:1',
      'postgres://latchkey:hunter2@127.0.0.1:1/latchkey',
    ]) {
      const result = await runCli(['serve', '--db', temp.db, '--store', url]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/--store: cannot reach/);
      expect(result.stderr).not.toContain('hunter2');
    }
    const fromFile = await runCli(['serve', '--config', configFile({ store: 'mysql://x' })]);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toMatch(
      /store: "mysql:\/\/x" is not a redis:\/\/, rediss:\/\/, postgres/,
    );
  });

  it('config check prints every key with secrets masked', async () => {
    const secretFile = join(temp.dir, 'check.secret');
    const secret = 'this-secret-must-never-be-printed-0123456789';
    writeFileSync(secretFile, secret, { mode: 0o600 });
    const file = configFile({
      store: 'postgres://app:s3cr3t-pw@db.internal:5432/auth?password=also-secret',
    });
    const result = await runCli(['config', 'check', '--config', file, '--secret-file', secretFile]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('postgres://app:***@db.internal:5432/auth?password=***');
    expect(result.stdout).toContain(secretFile);
    for (const hidden of ['s3cr3t-pw', 'also-secret', secret]) {
      expect(result.stdout).not.toContain(hidden);
      expect(result.stderr).not.toContain(hidden);
    }
    for (const key of ['host', 'port', 'idleTimeout', 'sweepInterval', 'forwardAuthHosts']) {
      expect(result.stdout).toMatch(new RegExp(`^${key}\\s`, 'm'));
    }
    const json = await runCli(['config', 'check', '--json', '--config', file]);
    expect(JSON.parse(json.stdout).store).toBe(
      'postgres://app:***@db.internal:5432/auth?password=***',
    );
  });

  it('every CLI command reads the same settings, --config included', async () => {
    const file = configFile({ db: temp.db });
    const listed = await runCli(['user', 'list', '--json', '--config', file]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('"username":"ada"');
    const fromEnv = await runCli(['user', 'list', '--json'], { env: { LATCHKEY_CONFIG: file } });
    expect(fromEnv.stdout).toContain('"username":"ada"');
    // A flag beats the file, as for serve.
    const other = join(temp.dir, 'other.db');
    const flagged = await runCli(['user', 'list', '--json', '--config', file, '--db', other]);
    expect(flagged).toMatchObject({ code: 0, stdout: '' });
    const bad = await runCli(['sessions', 'list', '--config', configFile({ idleTimout: '5m' })]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown key "idleTimout"/);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
