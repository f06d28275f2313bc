/** Checklist F (items 29-33, 35-36; 34 is in timing.test.ts): passwords and throttling. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cli,
  cliAddUser,
  csrfFrom,
  freshIp,
  inspect,
  loggedIn,
  newAccount,
  type Res,
  SESSION,
  type SecurityServer,
  sleep,
  startServer,
  strongPassword,
  uniqueName,
  userRow,
} from './support.js';

const COMMON = readFileSync(
  fileURLToPath(new URL('../../data/common-passwords.txt', import.meta.url)),
  'utf8',
)
  .split('\n')
  .map((line) => line.trim())
  .filter(Boolean);

let server: SecurityServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.stop());

const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

function hashOf(username: string): string {
  return String(userRow(server, username)?.password_hash);
}

/** Headers that differ on every response (not per account): left out of comparisons. */
const PER_REQUEST = new Set(['date', 'x-request-id']);

/** Status, headers except per-request ones, and body: what must not tell two failures apart. */
function snapshot(res: Res) {
  return {
    status: res.status,
    headers: [...res.headers].filter(([name]) => !PER_REQUEST.has(name)),
    body: res.body,
  };
}

describe('F. passwords, enumeration, throttling', () => {
  it('29: argon2id with m >= 19456 KiB, t >= 2, p = 1 (PHC string in latchkey_users)', async () => {
    const { username, password } = await newAccount(server);
    const viaCli = uniqueName('cli');
    const cliPassword = strongPassword();
    await cliAddUser(server.db, viaCli, cliPassword);
    const changed = await loggedIn(server);
    expect(
      (await changed.browser.postJson('/api/password', { newPassword: strongPassword() })).status,
    ).toBe(204);
    for (const name of [username, viaCli, changed.username]) {
      const match = PHC.exec(hashOf(name));
      expect(match, `${name}: ${hashOf(name)}`).not.toBeNull();
      expect(Number(match?.[1])).toBeGreaterThanOrEqual(19456);
      expect(Number(match?.[2])).toBeGreaterThanOrEqual(2);
      expect(Number(match?.[3])).toBe(1);
      expect(Buffer.from(match?.[4] ?? '', 'base64').length).toBeGreaterThanOrEqual(16);
    }
    expect(hashOf(username)).not.toContain(password);
  });

  it('30: a unique random salt per password: same password, different hashes', async () => {
    const password = strongPassword('same');
    const names = [uniqueName(), uniqueName(), uniqueName()];
    for (const name of names) await server.browser().signup(name, password);
    const hashes = names.map(hashOf);
    expect(new Set(hashes).size).toBe(3);
    const salts = hashes.map((hash) => PHC.exec(hash)?.[4]);
    expect(new Set(salts).size).toBe(3);
  });

  it('31: 64+ character passwords work, with no truncation and no case folding', async () => {
    const long = `${'Long passphrase with spaces and ünïcödé 🔐 '.repeat(3)}end`;
    expect([...long].length).toBeGreaterThan(100);
    const username = uniqueName();
    await server.browser().signup(username, long);
    expect((await server.browser().loginApi(username, long)).status).toBe(200);
    // Each near miss on its own account (same password), so no throttle answers instead.
    for (const variant of [
      long.slice(0, 64),
      long.slice(0, 72),
      long.slice(0, -1),
      long.toUpperCase(),
      long.toLowerCase().replace('l', 'L'),
      `${long} `,
    ]) {
      const twin = uniqueName();
      await server.browser().signup(twin, long);
      const res = await server.browser().loginApi(twin, variant);
      expect(res.status, JSON.stringify(variant.slice(0, 20))).toBe(401);
    }
    // A 1,024-character password is accepted.
    const max = `${strongPassword().slice(0, 24)}${'x'.repeat(1000)}`.slice(0, 1024);
    const maxUser = uniqueName();
    await server.browser().signup(maxUser, max);
    expect((await server.browser().loginApi(maxUser, max)).status).toBe(200);
  });

  it('31: a 1 MB password gets a 4xx (400/413), never a session, at login and sign-up', async () => {
    const { username } = await newAccount(server);
    const huge = 'a'.repeat(1024 * 1024);
    const browser = server.browser();
    for (const res of [
      await browser.loginApi(username, huge),
      await browser.postJson('/api/signup', { username: uniqueName(), password: huge }),
      await browser.postForm('/login', {
        username,
        password: huge,
        csrf: await browser.csrf('/login', '/login'),
      }),
      await browser.loginApi(username, 'b'.repeat(1025)),
      await browser.postJson('/api/signup', { username: uniqueName(), password: 'b'.repeat(1025) }),
    ]) {
      expect([400, 413], res.body.slice(0, 200)).toContain(res.status);
      expect(res.cookie(SESSION)?.value ?? '').toBe('');
    }
  });

  it('32: minimum length 8, common passwords refused, no composition rules', async () => {
    const browser = server.browser();
    const short = await browser.postJson('/api/signup', {
      username: uniqueName(),
      password: 'Zq9!xR2',
    });
    expect(short.status).toBe(400);
    expect(short.cookie(SESSION)?.value ?? '').toBe('');

    expect(COMMON.length).toBeGreaterThanOrEqual(3000);
    const commonLong = COMMON.filter((p) => [...p].length >= 8);
    const samples = [commonLong[0], commonLong[1], 'password1', commonLong.at(-1)] as string[];
    for (const password of samples) {
      const res = await browser.postJson('/api/signup', { username: uniqueName(), password });
      expect(res.status, password).toBe(400);
      expect(res.json<{ error: string }>().error, password).toBe('weak_password');
    }
    // The same refusal on a password change (API and HTML form).
    const { browser: member } = await loggedIn(server);
    const change = await member.postJson('/api/password', { newPassword: 'baseball' });
    expect(change.status).toBe(400);
    expect(change.json()).toMatchObject({ error: 'weak_password' });
    const page = await member.page('/password');
    const form = await member.postForm('/password', {
      new_password: 'football',
      sign_out_others: 'on',
      csrf: csrfFrom(page.body, '/password'),
    });
    expect(form.status).toBe(400);
    const htmlSignup = server.browser();
    const signupPage = await htmlSignup.page('/signup');
    const htmlRes = await htmlSignup.postForm('/signup', {
      username: uniqueName(),
      password: 'iloveyou',
      csrf: csrfFrom(signupPage.body, '/signup'),
    });
    expect(htmlRes.status).toBe(400);

    // No composition rules: only letters, only digits, only lower case, all accepted when the
    // estimator scores them 3+ (most 8-character passwords score 2 and are refused as guessable).
    for (const password of ['zqxvbnmwkt', '8403917265', 'qzmjkrvwtplb']) {
      expect(COMMON).not.toContain(password);
      const res = await browser.postJson('/api/signup', { username: uniqueName(), password });
      expect([200, 201], `${password}: ${res.body}`).toContain(res.status);
    }
  });

  it('33: one generic failure for unknown user, wrong password and disabled account', async () => {
    const existing = await newAccount(server);
    const disabled = await newAccount(server);
    await cli(server, ['user', 'disable', disabled.username]);
    const unknown = uniqueName();
    const browser = () => server.browser();
    const unknownRes = snapshot(await browser().loginApi(unknown, 'a wrong password'));
    const wrongRes = snapshot(await browser().loginApi(existing.username, 'a wrong password'));
    const disabledRes = snapshot(await browser().loginApi(disabled.username, disabled.password));
    expect(unknownRes.status).toBe(401);
    expect(unknownRes.body).toBe('{"error":"invalid_credentials"}');
    expect(wrongRes).toEqual(unknownRes);
    expect(disabledRes).toEqual(unknownRes);

    // The HTML form: same status and message (the username is echoed back, nothing else differs).
    const html = async (username: string, password: string) => {
      const res = await browser().loginForm(username, password);
      const body = res.body
        .replaceAll(username, 'NAME')
        .replace(/name="csrf" value="[^"]*"/g, 'name="csrf" value=""');
      return { status: res.status, body };
    };
    const unknownHtml = await html(unknown, 'a wrong password');
    expect(unknownHtml.status).toBe(401);
    expect(await html(existing.username, 'a wrong password')).toEqual(unknownHtml);
    expect(await html(disabled.username, disabled.password)).toEqual(unknownHtml);
  });

  it('33: throttling treats unknown and existing accounts alike (no enumeration via 429)', async () => {
    const existing = await newAccount(server);
    const unknown = uniqueName();
    const sequence = async (username: string) => {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        statuses.push((await server.browser().loginApi(username, `wrong-${i}-password`)).status);
      }
      return statuses;
    };
    const [a, b] = await Promise.all([sequence(unknown), sequence(existing.username)]);
    expect(a).toContain(429);
    expect(b).toEqual(a);
  });

  it('35: a parallel burst of 200 wrong passwords never gets past 100 checked; the right one is refused while throttled', async () => {
    const { username, password } = await newAccount(server);
    const burst = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        server.browser().loginApi(username, `wrong-password-${i}`),
      ),
    );
    const checked = burst.filter((res) => res.status === 401).length;
    const refused = burst.filter((res) => res.status === 429);
    expect(checked + refused.length).toBe(200);
    expect(checked).toBeLessThanOrEqual(100);
    expect(refused.length).toBeGreaterThanOrEqual(100);
    for (const res of refused) {
      expect(res.json()).toEqual({ error: 'too_many_attempts' });
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // On a loaded machine the burst can outlast its delay: find the account refused again, then
    // send the right password at once, well inside the Retry-After of at least 1 s.
    let refusal = await server.browser().loginApi(username, 'wrong-password-again');
    for (let i = 0; refusal.status !== 429 && i < 10; i++) {
      refusal = await server.browser().loginApi(username, `wrong-password-again-${i}`);
    }
    expect(refusal.status).toBe(429);
    const right = await server.browser().loginApi(username, password);
    expect(right.status).toBe(429);
    expect(right.cookie(SESSION)?.value ?? '').toBe('');
    // The store's counters never pass the limit.
    const max = inspect(server, (db) =>
      db.prepare('SELECT max(count) AS n FROM latchkey_attempts').get(),
    ) as { n: number };
    expect(max.n).toBeLessThanOrEqual(100);
  }, 60_000);

  it('36: counters are per account (rotating IPs do not help), delays increase, nothing locks for good', async () => {
    const { username, password } = await newAccount(server);
    const attempt = (pw: string) => server.browser(freshIp()).loginApi(username, pw);
    for (let i = 0; i < 5; i++) expect((await attempt(`wrong-${i}-password`)).status).toBe(401);
    const retries: number[] = [];
    for (let round = 0; round < 3; round++) {
      const refused = await attempt('wrong-again-password');
      expect(refused.status, `round ${round}`).toBe(429);
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      retries.push(retryAfter);
      await sleep(retryAfter * 1000 + 300);
      if (round < 2) {
        expect((await attempt(`wrong-round-${round}-password`)).status).toBe(401);
      }
    }
    expect(retries[1]).toBeGreaterThan(retries[0] as number);
    expect(retries[2]).toBeGreaterThan(retries[1] as number);
    // After waiting it out, the right password works: no permanent lockout.
    const ok = await attempt(password);
    expect(ok.status, ok.body).toBe(200);
  }, 60_000);

  it('36: per-IP limit: one address spraying many accounts is throttled', {
    timeout: 60_000,
  }, async () => {
    // 100 free attempts per address, then delays: a burst of 140 cannot all be checked.
    const sprayer = server.browser(freshIp());
    const results = await Promise.all(
      Array.from({ length: 140 }, () => sprayer.loginApi(uniqueName(), 'Spring2024!x')),
    );
    const refused = results.filter((res) => res.status === 429).length;
    expect(refused).toBeGreaterThan(0);
    expect(results.filter((res) => res.status === 401).length).toBeLessThanOrEqual(110);
    // Another address is not affected.
    expect((await server.browser(freshIp()).loginApi(uniqueName(), 'whatever-pass')).status).toBe(
      401,
    );
  });

  it('36: X-Forwarded-For is believed only from --trust-proxy addresses', {
    timeout: 90_000,
  }, async () => {
    // Trusted proxy (this server trusts 127.0.0.1): 140 addresses, 140 accounts, no IP throttling.
    const trusted = await Promise.all(
      Array.from({ length: 140 }, () =>
        server.browser(freshIp()).loginApi(uniqueName(), 'Spring2024!x'),
      ),
    );
    expect(trusted.filter((res) => res.status === 429)).toHaveLength(0);

    // No --trust-proxy: the same rotating header is ignored, so one IP hits its limit.
    const untrusting = await startServer({ trustProxy: false });
    try {
      // Sessions record the socket address, not the spoofed header.
      const account = await newAccount(untrusting);
      const spoofer = untrusting.browser('203.0.113.7');
      await spoofer.login(account.username, account.password);
      const me = await spoofer.whoami();
      const ip = (me?.session as { ip?: string } | undefined)?.ip;
      // The socket's own address: the server listens on loopback.
      expect(ip).toBe('127.0.0.1');

      const spoofed = await Promise.all(
        Array.from({ length: 140 }, () =>
          untrusting.browser(freshIp()).loginApi(uniqueName(), 'Spring2024!x'),
        ),
      );
      expect(spoofed.filter((res) => res.status === 429).length).toBeGreaterThan(0);
    } finally {
      await untrusting.stop();
    }
  });
});
