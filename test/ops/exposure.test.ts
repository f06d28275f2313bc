/** Issue 12, items 7, 10 and 14 against `latchkey serve` and the CLI as child processes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, Latchkey } from '../../src/index.js';
import { terminalLine } from '../../src/server/logs.js';
import { readServeSettings } from '../../src/server/settings.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { addUser, runCli, tempDir, useServe } from '../helpers/cli.js';
import { PASSWORD } from './support.js';

const temp = tempDir();
beforeAll(() => addUser(temp.db, 'ada', PASSWORD));
afterAll(() => temp.remove());

const startServe = useServe();
const TOKEN = 'a-metrics-token-of-some-length';
/** ESC, CSI (U+009B), BEL, a bidi override: what must never reach a terminal raw. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;

describe('item 14: /metrics exposure', () => {
  it('12.14: --metrics on a non-loopback address is refused at start without --metrics-token', () => {
    const exposed = ['--host', '0.0.0.0', '--behind-https', '--metrics'];
    expect(() => readServeSettings(exposed, {})).toThrow(ConfigError);
    expect(() => readServeSettings(exposed, {})).toThrow(/--metrics-token/);
    expect(readServeSettings([...exposed, '--metrics-token', TOKEN], {})?.metricsToken).toBe(TOKEN);
    expect(readServeSettings(['--host', '127.0.0.1', '--metrics'], {})?.metrics).toBe(true);
    expect(() => readServeSettings(['--metrics-token', 'short'], {})).toThrow(/at least 16/);
  });

  it('12.14: a refused start says so and never listens', async () => {
    const result = await runCli([
      'serve',
      '--db',
      temp.db,
      '--port',
      '0',
      '--host',
      '0.0.0.0',
      '--behind-https',
      '--metrics',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/--metrics-token/);
    expect(result.stdout).not.toMatch(/listening/);
  });

  it('12.14: with --metrics-token, /metrics needs Authorization: Bearer <token> (main and metrics port)', async () => {
    const { url, metricsUrl } = await serveWithMetricsUrl(['--metrics', '--metrics-token', TOKEN]);
    for (const target of [`${url}/metrics`, metricsUrl]) {
      expect((await fetch(target)).status, target).toBe(401);
      const wrong = await fetch(target, { headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await wrong.text()).not.toContain('latchkey_');
      const right = await fetch(target, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(right.status).toBe(200);
      expect(await right.text()).toContain('latchkey_logins_total');
    }
  });

  /** Serves `/metrics` on the main port and on a metrics port; gives both addresses. */
  async function serveWithMetricsUrl(args: string[]): Promise<{ url: string; metricsUrl: string }> {
    // One process cannot have both: the metrics port is a second server with the same token.
    const main = await startServe(['--db', temp.db, ...args]);
    const side = await startServe([
      '--db',
      temp.db,
      '--metrics-port',
      '0',
      '--metrics-token',
      TOKEN,
    ]);
    const metricsUrl = /"metrics":"([^"]+)"/.exec(side.output())?.[1] as string;
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    return { url: main.url, metricsUrl };
  }
});

describe('item 7: the session cookie name', () => {
  it('12.7: --cookie-name without __Host- is refused at start; --insecure-cookie-name allows it and warns', async () => {
    const refused = await runCli(['serve', '--db', temp.db, '--port', '0', '--cookie-name', 'sid']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/__Host- prefix/);
    const server = await startServe([
      '--db',
      temp.db,
      '--cookie-name',
      'sid',
      '--insecure-cookie-name',
    ]);
    expect(server.output()).toMatch(/"level":40.*--insecure-cookie-name/);
    const login = await fetch(`${server.url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: server.url },
      body: JSON.stringify({ username: 'ada', password: PASSWORD }),
    });
    expect(login.status).toBe(200);
    expect(login.headers.getSetCookie()[0]).toMatch(/^sid=[\w-]{43};/);
  });
});

describe('item 10: terminal output', () => {
  it('12.10: latchkey sessions list and user list escape control characters in user agents and usernames', async () => {
    const store = new SqliteStore(temp.db);
    try {
      const auth = new Latchkey({ store, users: store });
      const ada = await auth.findUser('ada');
      await auth.create(ada?.id as string, {
        user: { id: ada?.id as string, username: 'ada' },
        userAgent: 'Mozilla\u001b[2J\u001b]0;owned\u0007\u009b31m\u202e',
      });
      // An account named before such names were refused.
      const record = await store.findUserById(ada?.id as string);
      await store.createUser({
        ...(record as NonNullable<typeof record>),
        id: 'legacy-eve',
        username: 'eve\u009b2J\u001b[31m',
        usernameKey: 'legacy-eve',
      });
    } finally {
      await store.close();
    }
    for (const args of [
      ['sessions', 'list'],
      ['sessions', 'list', '--json'],
      ['user', 'list'],
    ]) {
      const result = await runCli([...args, '--db', temp.db]);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout, args.join(' ')).not.toMatch(RAW_CONTROL);
      expect(result.stdout, args.join(' ')).toMatch(/\\u001b|\\u009b/);
    }
    const json = await runCli(['sessions', 'list', '--json', '--db', temp.db]);
    const agents = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).userAgent);
    expect(agents).toContain('Mozilla\u001b[2J\u001b]0;owned\u0007\u009b31m\u202e'); // same JSON meaning
  });

  it('12.10: the terminal log format escapes C0/C1 controls in every field', () => {
    const line = `${JSON.stringify({
      level: 30,
      time: Date.now(),
      msg: 'request',
      method: 'GET',
      route: '/\u009b2J',
      status: 200,
      durationMs: 1,
      userId: 'eve\u001b[31m',
      reqId: 'r1',
      userAgent: 'curl\u0007\u0085',
    })}\n`;
    const shown = terminalLine(line);
    expect(shown.endsWith('\n')).toBe(true);
    expect(shown.slice(0, -1)).not.toMatch(RAW_CONTROL);
    expect(shown).toContain('/\\u009b2J');
    expect(shown).toContain('user=eve\\u001b[31m');
    const other = terminalLine(
      `${JSON.stringify({ level: 40, time: 1, msg: 'x\u009b', agent: 'a\u001b' })}\n`,
    );
    expect(other.slice(0, -1)).not.toMatch(RAW_CONTROL);
    expect(terminalLine('not json \u001b[2J\n')).toBe('not json \\u001b[2J\n');
  });
});
