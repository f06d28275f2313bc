/** Checklist E (items 27-28): remember-me tokens (selector/validator). */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Browser,
  expectHostCookie,
  inspect,
  isClearing,
  loggedIn,
  REMEMBER,
  type Res,
  SESSION,
  type SecurityServer,
  sleep,
  startServer,
  strongPassword,
  THIRTY_DAYS,
  userRow,
} from './support.js';

let server: SecurityServer;
/** A short grace window, so the theft test waits 1 s, not the default 10 s. */
const GRACE_MS = 1000;
beforeAll(async () => {
  server = await startServer({ args: ['--remember-grace', `${GRACE_MS}ms`] });
});
afterAll(() => server?.stop());

/** A browser holding only the given remember-me cookie (a new device, or a thief). */
function withRemember(value: string): Browser {
  const browser = server.browser();
  browser.jar.set(REMEMBER, value);
  return browser;
}

function rememberRows(userId: string): Array<Record<string, unknown>> {
  return inspect(
    server,
    (db) =>
      db.prepare('SELECT * FROM latchkey_remember WHERE user_id = ?').all(userId) as Array<
        Record<string, unknown>
      >,
  );
}

/** Refused: 401, the remember-me cookie cleared, no session cookie issued. */
function expectRefused(res: Res, label: string): void {
  expect(res.status, label).toBe(401);
  const session = res.cookie(SESSION);
  expect(session === undefined || session.value === '', `${label}: no session issued`).toBe(true);
  const remember = res.cookie(REMEMBER);
  expect(remember, `${label}: remember cookie cleared`).toBeDefined();
  expect(remember?.value, label).toBe('');
  if (remember) expect(isClearing(remember), remember.raw).toBe(true);
}

describe('E. remember me', () => {
  it('27: a separate __Host- HttpOnly Secure cookie selector.validator, lifetime <= 30 days', async () => {
    const { browser } = await loggedIn(server, { remember: true });
    const value = browser.remember as string;
    expect(value).toMatch(/^[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{32,}$/);
    expect(value).not.toBe(browser.session);
    const form = server.browser();
    const account = await loggedIn(server);
    const res = await form.loginForm(account.username, account.password, { remember: true });
    expect(res.status).toBe(303);
    for (const cookie of [res.cookie(REMEMBER)]) {
      expect(cookie, 'the HTML form honours remember=on').toBeDefined();
      if (!cookie) continue;
      expectHostCookie(cookie);
      const maxAge = Number(cookie.attributes.get('max-age'));
      expect(maxAge).toBeGreaterThan(0);
      expect(maxAge).toBeLessThanOrEqual(THIRTY_DAYS);
    }
    // Without the box ticked there is no remember-me cookie.
    const plain = server.browser();
    const noBox = await plain.loginForm(account.username, account.password);
    expect(noBox.cookie(REMEMBER)).toBeUndefined();
    const noFlag = await server.browser().loginApi(account.username, account.password);
    expect(noFlag.cookie(REMEMBER)).toBeUndefined();
  });

  it('27: the store keeps only SHA-256(validator); the raw validator is nowhere in the database', async () => {
    const { browser, username } = await loggedIn(server, { remember: true });
    const value = browser.remember as string;
    const [selector, validator] = value.split('.') as [string, string];
    const userId = String(userRow(server, username)?.id);
    const rows = rememberRows(userId);
    const row = rows.find((r) => r.selector === selector);
    expect(row, 'the token is stored under its selector').toBeDefined();
    const digest = createHash('sha256').update(validator).digest();
    expect([
      digest.toString('base64url'),
      digest.toString('hex'),
      digest.toString('base64'),
    ]).toContain(row?.validator_hash);
    for (const r of rows) {
      for (const column of Object.values(r)) {
        expect(String(column)).not.toContain(validator);
      }
    }
    // Nor in the raw bytes of the database and its WAL.
    for (const file of readdirSync(server.dir).filter((f) => f.startsWith('latchkey.db'))) {
      const bytes = readFileSync(join(server.dir, file));
      expect(bytes.includes(Buffer.from(validator)), file).toBe(false);
    }
    expect(Number(row?.expires_at) - Number(row?.created_at)).toBeLessThanOrEqual(
      THIRTY_DAYS * 1000,
    );
  });

  it('27: each use issues a new session and rotates the token; within 10 s the old token gives the same successor', async () => {
    const { browser, username } = await loggedIn(server, { remember: true });
    const original = browser.remember as string;
    const device = withRemember(original);
    const first = await device.me();
    expect(first.status).toBe(200);
    expect(first.json<{ user: { username: string } }>().user.username).toBe(username);
    const session = first.cookie(SESSION)?.value;
    expect(session, 'a new session cookie').toBeTruthy();
    expect(session).not.toBe(browser.session);
    const successor = first.cookie(REMEMBER)?.value;
    expect(successor, 'a rotated remember-me cookie').toBeTruthy();
    expect(successor).not.toBe(original);

    // A parallel tab that still sends the old token within the grace window: same successor.
    const tab = await withRemember(original).me();
    expect(tab.status).toBe(200);
    expect(tab.cookie(REMEMBER)?.value).toBe(successor);

    // A dead session cookie next to a live remember-me cookie: a new session, request served.
    const stale = withRemember(successor as string);
    stale.jar.set(SESSION, 'B'.repeat(43));
    const served = await stale.me();
    expect(served.status).toBe(200);
    expect(served.cookie(SESSION)?.value).toBeTruthy();
    expect(served.cookie(SESSION)?.value).not.toBe('B'.repeat(43));
  });

  it('27: a used token replayed after the grace window is theft: every session and token of the user dies', async () => {
    const { browser, username, password } = await loggedIn(server, { remember: true });
    const userId = String(userRow(server, username)?.id);
    const original = browser.remember as string;
    const other = server.browser();
    await other.login(username, password);
    const device = withRemember(original);
    expect((await device.me()).status).toBe(200);
    expect(device.remember).not.toBe(original);

    await sleep(GRACE_MS + 100);
    const replay = await withRemember(original).me();
    expectRefused(replay, 'replayed rotated token');
    expect((await device.me()).status, 'the legitimate successor session').toBe(401);
    expect((await withRemember(device.remember as string).me()).status).toBe(401);
    expect((await browser.me()).status, 'the password session').toBe(401);
    expect((await other.me()).status, 'another device').toBe(401);
    expect(rememberRows(userId)).toEqual([]);
    const theft = server.audit().filter((line) => line.event === 'theft_detected');
    expect(theft.some((line) => line.userId === userId)).toBe(true);
  });

  it('27: a tampered, swapped or expired (past 30 days) token is rejected and cleared', async () => {
    const one = await loggedIn(server, { remember: true });
    const two = await loggedIn(server, { remember: true });
    const [selA, valA] = (one.browser.remember as string).split('.') as [string, string];
    const [selB, valB] = (two.browser.remember as string).split('.') as [string, string];
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    for (const [label, value] of [
      ['validator changed', `${selA}.${flip(valA)}`],
      ['selector changed', `${flip(selA)}.${valA}`],
      ['validators swapped', `${selA}.${valB}`],
      ['selectors swapped', `${selB}.${valA}`],
    ] as const) {
      expectRefused(await withRemember(value).me(), label);
    }

    // Past its 30 days: the test moves the token's end into the past (as a clock would).
    const writable = new Database(server.db);
    try {
      writable
        .prepare('UPDATE latchkey_remember SET expires_at = ? WHERE selector = ?')
        .run(Date.now() - 1000, selA);
    } finally {
      writable.close();
    }
    expectRefused(await withRemember(`${selA}.${valA}`).me(), 'expired');
  });

  it('28: logout revokes the remember-me token', async () => {
    for (const via of ['api', 'form'] as const) {
      const { browser } = await loggedIn(server, { remember: true });
      const token = browser.remember as string;
      const res =
        via === 'api'
          ? await browser.request('POST', '/api/logout')
          : await browser.postForm('/logout', { csrf: await browser.csrf() });
      expect([204, 303]).toContain(res.status);
      expectRefused(await withRemember(token).me(), `${via}: token after logout`);
      const selector = token.split('.')[0];
      const left = inspect(server, (db) =>
        db.prepare('SELECT count(*) AS n FROM latchkey_remember WHERE selector = ?').get(selector),
      ) as { n: number };
      expect(left.n).toBe(0);
    }
  });

  it('28: password change and "log out everywhere" revoke remember-me tokens', async () => {
    const { browser, username, password } = await loggedIn(server);
    const laptop = server.browser();
    await laptop.login(username, password, true);
    const laptopToken = laptop.remember as string;
    const changed = await browser.postJson('/api/password', { newPassword: strongPassword() });
    expect(changed.status, changed.body).toBe(204);
    expectRefused(await withRemember(laptopToken).me(), 'token after password change');

    const next = await loggedIn(server);
    const phone = server.browser();
    await phone.login(next.username, next.password, true);
    const phoneToken = phone.remember as string;
    const all = await next.browser.request('POST', '/api/logout-everywhere');
    expect(all.status).toBe(204);
    expectRefused(await withRemember(phoneToken).me(), 'token after logout-everywhere');
    expect((await phone.me({ cookie: `${SESSION}=${phone.session}` })).status).toBe(401);
    expect((await next.browser.me()).status).toBe(401);

    const html = await loggedIn(server);
    const tablet = server.browser();
    await tablet.login(html.username, html.password, true);
    const tabletToken = tablet.remember as string;
    const form = await html.browser.postForm('/logout-everywhere', {
      csrf: await html.browser.csrf('/sessions'),
    });
    expect(form.status).toBe(303);
    expectRefused(await withRemember(tabletToken).me(), 'token after HTML logout-everywhere');
  });

  it('28: a session restored from remember-me cannot make sensitive changes without re-authentication', async () => {
    const { browser, username, password } = await loggedIn(server, { remember: true });
    const other = server.browser();
    await other.login(username, password);
    const otherId = (await other.whoami())?.session.id as string;
    // A new device with only the remember-me cookie, right after the password login.
    const restored = withRemember(browser.remember as string);
    expect((await restored.me()).status).toBe(200);
    const required = { error: 'reauthentication_required' };

    const change = await restored.postJson('/api/password', { newPassword: strongPassword() });
    expect(change.status, change.body).toBe(403);
    expect(change.json()).toEqual(required);
    const revoke = await restored.request('DELETE', `/api/sessions/${otherId}`, { json: {} });
    expect(revoke.status).toBe(403);
    const others = await restored.postJson('/api/sessions/revoke-others', {});
    expect(others.status).toBe(403);
    const disable = await restored.postJson('/api/account/disable', {});
    expect(disable.status).toBe(403);
    const form = await restored.postForm('/password', {
      new_password: strongPassword(),
      sign_out_others: 'on',
      csrf: await restored.csrf('/password'),
    });
    expect(form.status).toBe(403);
    expect((await other.me()).status).toBe(200);
    expect(userRow(server, username)?.disabled).toBe(0);

    // With the current password it goes through.
    const ok = await restored.request('DELETE', `/api/sessions/${otherId}`, {
      json: { currentPassword: password },
    });
    expect(ok.status, ok.body).toBe(204);
    expect((await other.me()).status).toBe(401);
  });
});
