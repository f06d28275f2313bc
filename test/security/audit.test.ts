/** Checklist item 41: every login success and failure is logged; no secret ever is. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Browser,
  CSRF_COOKIE,
  csrfFrom,
  inspect,
  REMEMBER,
  type Res,
  type SecurityServer,
  sleep,
  startServer,
  strongPassword,
  uniqueName,
} from './support.js';

let server: SecurityServer;
/** Every secret the run used or saw: passwords, tokens, cookie values. */
const secrets = new Set<string>();
/** Session ids of successful password logins, and counts of failures. */
const succeeded: string[] = [];
let failed = 0;
let throttled = 0;

function keep(value: string | undefined | null): void {
  if (value && value.length >= 8) secrets.add(value);
}

/** Records every cookie value (and remember-me validator) a response set. */
function harvest(res: Res): Res {
  for (const cookie of res.setCookies) {
    keep(cookie.value);
    if (cookie.name === REMEMBER) keep(cookie.value.split('.')[1]);
  }
  for (const match of res.body.matchAll(/name="csrf" value="([^"]+)"/g)) keep(match[1]);
  return res;
}

async function login(browser: Browser, username: string, password: string, remember = false) {
  keep(password);
  const res = harvest(await browser.loginApi(username, password, remember));
  if (res.status === 200) {
    const me = await browser.whoami();
    succeeded.push(me?.session.id as string);
  } else if (res.status === 401) failed++;
  else if (res.status === 429) throttled++;
  return res;
}

beforeAll(async () => {
  server = await startServer({
    args: ['--idle-timeout', '2s', '--absolute-timeout', '1m', '--remember-grace', '1s'],
  });
  const username = uniqueName('audit');
  const password = strongPassword('audit');
  keep(password);
  harvest(await server.browser().signup(username, password));

  // Successes: API with remember-me, HTML form.
  const phone = server.browser();
  await login(phone, username, password, true);
  const laptop = server.browser();
  const page = harvest(await laptop.page('/login'));
  const form = harvest(
    await laptop.postForm('/login', { username, password, csrf: csrfFrom(page.body, '/login') }),
  );
  expect(form.status).toBe(303);
  succeeded.push((await laptop.whoami())?.session.id as string);
  keep(laptop.jar.get(CSRF_COOKIE));
  harvest(await laptop.page('/dashboard'));

  // Failures: wrong password, unknown user, a password typed into the username field.
  await login(server.browser(), username, 'wrong-password-one');
  await login(server.browser(), uniqueName('ghost'), 'wrong-password-two');
  await login(server.browser(), 'Typed-My-Password-Here-42', 'wrong-password-three');
  keep('Typed-My-Password-Here-42');

  // Throttled: a sixth and seventh wrong password on another account.
  const victim = uniqueName('victim');
  const victimPassword = strongPassword();
  keep(victimPassword);
  harvest(await server.browser().signup(victim, victimPassword));
  for (let i = 0; i < 7; i++) await login(server.browser(), victim, `bad-guess-number-${i}`);

  // Remember-me: use (rotation), then a session that will expire idle.
  const restored = server.browser();
  restored.jar.set(REMEMBER, phone.remember as string);
  harvest(await restored.me());
  const idle = server.browser();
  await login(idle, username, password);

  // Revocation and logout.
  const spare = server.browser();
  await login(spare, username, password);
  const spareId = (await spare.whoami())?.session.id as string;
  harvest(await laptop.request('DELETE', `/api/sessions/${spareId}`, { json: {} }));
  harvest(await laptop.postForm('/logout', { csrf: await laptop.csrf() }));

  // Wait out the grace window (and the idle timeout), then replay the rotated token: theft.
  await sleep(2100);
  harvest(await idle.me());
  const thief = server.browser();
  thief.jar.set(REMEMBER, phone.remember as string);
  harvest(await thief.me());

  // Password change after the theft (it revokes remember-me tokens; the new password is a secret too).
  const newPassword = strongPassword('changed');
  keep(newPassword);
  const other = server.browser();
  await login(other, username, password);
  const changed = harvest(
    await other.postJson('/api/password', { newPassword, signOutOthers: false }),
  );
  expect(changed.status).toBe(204);

  // Password hashes and the CSRF secret are secrets too.
  for (const row of inspect(server, (db) =>
    db.prepare('SELECT password_hash FROM latchkey_users').all(),
  ) as Array<{ password_hash: string }>) {
    keep(row.password_hash);
    keep(row.password_hash.split('$').at(-1));
  }
  keep(readFileSync(server.secretFile, 'utf8').trim());
  // The log is written by another process: wait until it holds the last login.
  const last = succeeded.at(-1);
  await vi.waitFor(
    () => {
      const logged = server.audit().some((line) => line.sessionId === last);
      if (!logged) throw new Error('the last login is not in the audit log yet');
    },
    { timeout: 5000, interval: 20 },
  );
}, 90_000);
afterAll(() => server?.stop());

describe('41: audit log', () => {
  it('41: every login success/failure is logged (with the other session events) as JSON lines', () => {
    const lines = server.audit();
    expect(lines.length).toBeGreaterThan(0);
    const events = lines.map((line) => line.event);
    for (const type of [
      'login_succeeded',
      'login_failed',
      'login_throttled',
      'logout',
      'revoked',
      'expired',
      'theft_detected',
    ]) {
      expect(events, `an audit "${type}" event`).toContain(type);
    }
    const successIds = lines
      .filter((line) => line.event === 'login_succeeded')
      .map((line) => line.sessionId);
    for (const id of succeeded) expect(successIds, 'each successful login').toContain(id);
    expect(failed).toBeGreaterThanOrEqual(8);
    expect(lines.filter((line) => line.event === 'login_failed')).toHaveLength(failed);
    expect(throttled).toBeGreaterThan(0);
    expect(lines.filter((line) => line.event === 'login_throttled')).toHaveLength(throttled);
    for (const line of lines) {
      expect(typeof line.time === 'string' || typeof line.time === 'number').toBe(true);
    }
  });

  it('41: no password, token, cookie value or hash appears in the audit log or the server output', () => {
    const audit = readFileSync(server.auditLog, 'utf8');
    const output = server.output();
    expect(secrets.size).toBeGreaterThan(20);
    expect([...secrets].some((s) => s.startsWith('$argon2id$'))).toBe(true);
    for (const secret of secrets) {
      expect(audit.includes(secret), `audit log contains ${secret.slice(0, 6)}…`).toBe(false);
      expect(output.includes(secret), `server output contains ${secret.slice(0, 6)}…`).toBe(false);
    }
  });
});
