import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, type ServeProcess, startServe, tempDir } from '../helpers/cli.js';
import { cookiesOf, NAVIGATE, PASSWORD, page, postForm } from './support.js';

const EXAMPLE = new URL('../../examples/nginx/nginx.conf', import.meta.url);

/** `nginx` on PATH, else Debian's /usr/sbin/nginx (not on a normal user's PATH). */
const NGINX = ['nginx', '/usr/sbin/nginx'].find((candidate) => {
  try {
    execFileSync(candidate, ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

function nginxMissing(): string | null {
  return NGINX ? null : 'nginx is not installed (Debian package nginx; .ci/run installs it)';
}

const missing = nginxMissing();
if (missing && process.env.LATCHKEY_REQUIRE_SERVICES === '1') {
  throw new Error(`required (LATCHKEY_REQUIRE_SERVICES=1) but ${missing}`);
}
if (missing) console.warn(`skipping nginx forward-auth test: ${missing}`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, nginx: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited (${nginx.exitCode}): ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}: ${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const temp = tempDir();
let upstream: Server;
let latchkey: ServeProcess;
let nginx: ChildProcess | undefined;
let base: string;
/** The same server block on a second port: a host whose policy is two_factor. */
let secure: string;
/** What the app behind nginx received. */
const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];

beforeAll(async () => {
  if (missing) return;
  await addUser(temp.db, 'ada', PASSWORD);
  upstream = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello ${decodeURIComponent(String(req.headers['x-auth-user'] ?? ''))}`);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const appPort = (upstream.address() as AddressInfo).port;
  const nginxPort = await freePort();
  const securePort = await freePort();
  base = `http://127.0.0.1:${nginxPort}`;
  secure = `http://127.0.0.1:${securePort}`;
  latchkey = await startServe([
    '--db',
    temp.db,
    '--trust-proxy',
    '127.0.0.1',
    '--forward-auth-hosts',
    `127.0.0.1:${nginxPort},127.0.0.1:${securePort}`,
    '--forward-auth-policy',
    `127.0.0.1:${securePort}=two_factor`,
  ]);
  const latchkeyPort = new URL(latchkey.url).port;

  // The documented config, ports replaced, run as this user with everything in a temp prefix.
  const conf = readFileSync(EXAMPLE, 'utf8')
    .replace('server 127.0.0.1:3000;', `server 127.0.0.1:${latchkeyPort};`)
    .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${appPort};`)
    .replace(
      'listen 127.0.0.1:8000;',
      `listen 127.0.0.1:${nginxPort}; listen 127.0.0.1:${securePort};`,
    );
  expect(conf).toContain(`listen 127.0.0.1:${nginxPort};`);
  const prefix = join(temp.dir, 'nginx');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  const errorLog = join(prefix, 'error.log');
  const globals = [
    'daemon off;',
    `pid ${join(prefix, 'nginx.pid')};`,
    ...(process.getuid?.() === 0 ? [`user ${userInfo().username};`] : []),
  ].join(' ');
  let output = '';
  nginx = spawn(NGINX ?? 'nginx', ['-p', prefix, '-c', confPath, '-e', errorLog, '-g', globals], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  nginx.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  nginx.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const log = () => `${output}\n${existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''}`;
  await waitForPort(nginxPort, nginx, log);
  await waitForPort(securePort, nginx, log);
}, 60_000);

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((resolve) => nginx?.once('exit', resolve));
    nginx.kill('SIGTERM');
    await exited;
  }
  await latchkey?.stop();
  await new Promise((resolve) => (upstream ? upstream.close(resolve) : resolve(undefined)));
  temp.remove();
});

// /auth/verify on its own (no nginx needed) is tested in process: test/server/app.test.ts.
describe.skipIf(missing !== null)('nginx auth_request in front of an app (examples/nginx)', () => {
  it('unauthenticated → login page; log in → app with the user header; logout → refused', async () => {
    const target = `${base}/reports/q3?year=2024&view=full`;

    // 1. Not signed in: nginx asks /auth/verify (401) and sends the browser to the login page.
    const first = await page(target);
    expect(first.status).toBe(302);
    const login = first.headers.get('location') ?? '';
    expect(login).toBe(`${base}/login?rd=${target}`);
    expect(seen).toHaveLength(0);

    // 2. The login page (through nginx) keeps the whole original URL as where to go back to.
    const shown = await page(login);
    expect(shown.status).toBe(200);
    const html = await shown.text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const next = /name="next" value="([^"]+)"/.exec(html)?.[1]?.replace(/&(amp|#38);/g, '&');
    expect(next).toBe(target);
    const preLogin = cookiesOf(shown).filter((pair) => pair.startsWith('__Host-csrf='));

    // 3. Log in: back to the app's URL, with the session cookie (passed by hand: it is Secure).
    const posted = await fetch(`${base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        ...NAVIGATE,
        'content-type': 'application/x-www-form-urlencoded',
        origin: base,
        cookie: preLogin.join('; '),
      },
      body: new URLSearchParams({ username: 'ada', password: PASSWORD, next: next ?? '', csrf }),
    });
    expect(posted.status).toBe(303);
    expect(posted.headers.get('location')).toBe(target);
    const session = cookiesOf(posted).find((pair) => pair.startsWith('__Host-session='));
    expect(session).toBeDefined();
    const cookie = session as string;

    // 4. Signed in: the app is reached, told who it is; a forged header is overwritten.
    const app = await page(target, cookie, { 'x-auth-user': 'mallory' });
    expect(app.status).toBe(200);
    expect(await app.text()).toBe('hello ada');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.url).toBe('/reports/q3?year=2024&view=full');
    expect(seen[0]?.headers['x-auth-user']).toBe('ada');
    expect(seen[0]?.headers['x-auth-user-id']).toMatch(/^[0-9a-f-]{36}$/);

    // 5. Log out through nginx (the dashboard's form token), then the app refuses the cookie.
    const dashboard = await page(`${base}/dashboard`, cookie);
    expect(dashboard.status).toBe(200);
    const token = /name="csrf" value="([^"]+)"/.exec(await dashboard.text())?.[1] ?? '';
    const logout = await fetch(`${base}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        ...NAVIGATE,
        'content-type': 'application/x-www-form-urlencoded',
        origin: base,
        cookie,
      },
      body: new URLSearchParams({ csrf: token }),
    });
    expect(logout.status).toBe(303);
    const refused = await page(target, cookie);
    expect(refused.status).toBe(302);
    expect(refused.headers.get('location')).toBe(`${base}/login?rd=${target}`);
    expect(seen).toHaveLength(1);
  });

  it('a two_factor host sends a one-factor session to step up, with rd carried back; TOTP passes it', async () => {
    const target = `${secure}/admin/payroll?month=11`;
    // Two password sessions of one account (no second factor yet): both at level 1.
    const login = async () => {
      const { response } = await postForm(`${base}/login`, { username: 'ada', password: PASSWORD });
      expect(response.status).toBe(303);
      return cookiesOf(response).find((pair) => pair.startsWith('__Host-session=')) as string;
    };
    const [stale, enroller] = [await login(), await login()];
    // The one_factor host lets level 1 through; the two_factor host does not.
    expect((await page(`${base}/reports`, stale)).status).toBe(200);
    const before = seen.length;
    const refused = await page(target, stale);
    expect(refused.status).toBe(302);
    expect(refused.headers.get('location')).toBe(`${secure}/login?rd=${target}`);
    expect(seen).toHaveLength(before);

    // Turn TOTP on with the other session (through nginx's /api/).
    const json = (cookie: string, path: string, body: unknown) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          accept: 'application/json',
          'content-type': 'application/json',
          origin: base,
          cookie,
        },
        body: JSON.stringify(body),
      });
    const begun = await json(enroller, '/api/two-factor/totp', {});
    expect(begun.status).toBe(201);
    const { factorId, secret } = (await begun.json()) as { factorId: string; secret: string };
    const key = Secret.fromBase32(secret);
    const confirmed = await json(enroller, '/api/two-factor/totp/confirm', {
      factorId,
      code: TOTP.generate({ secret: key }),
    });
    expect(confirmed.status).toBe(200);

    // The level-1 session: the login page (rd) sends it to the second step, which keeps rd.
    const shownLogin = await page(`${secure}/login?rd=${encodeURIComponent(target)}`, stale);
    expect(shownLogin.status).toBe(303);
    const step = new URL(shownLogin.headers.get('location') ?? '', secure);
    expect(step.pathname).toBe('/login/second-factor');
    expect(step.searchParams.get('next')).toBe(target);
    const { response: stepped } = await postForm(
      `${secure}/login/second-factor`,
      // The enrolment used this time step: the next one (inside the ±1 window) steps up.
      { code: TOTP.generate({ secret: key, timestamp: Date.now() + 30_000 }), next: target },
      { cookie: stale, formPage: `${step.pathname}${step.search}` },
    );
    expect(stepped.status).toBe(303);
    expect(stepped.headers.get('location')).toBe(target);
    const raised = cookiesOf(stepped).find((pair) => pair.startsWith('__Host-session=')) as string;
    expect(raised).not.toBe(stale);

    // Level 2 reaches the app on the two_factor host; the level-1 id was rotated away.
    const app = await page(target, raised);
    expect(app.status).toBe(200);
    expect(await app.text()).toBe('hello ada');
    expect(seen.at(-1)?.url).toBe('/admin/payroll?month=11');
    expect((await page(`${base}/reports`, stale)).status).toBe(302);
  });

  it('the login page never returns to a host outside --forward-auth-hosts', async () => {
    for (const rd of [
      'http://evil.example/steal',
      `http://127.0.0.1:1/elsewhere`,
      '//evil.example/',
      'javascript:alert(1)',
      `http://user:pw@${new URL(base).host}/`,
    ]) {
      const shown = await page(`${base}/login?rd=${encodeURIComponent(rd)}`);
      expect(shown.status).toBe(200);
      expect(await shown.text()).not.toContain('name="next"');
    }
    // Same-origin paths keep working as before.
    const path = await page(`${base}/login?next=${encodeURIComponent('/reports')}`);
    expect(await path.text()).toContain('name="next" value="/reports"');
  });
});
