/** Checklist D (items 23-26): password change, session lists, disabling, re-authentication. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Browser,
  cli,
  csrfFrom,
  inspect,
  loggedIn,
  REMEMBER,
  type SecurityServer,
  sleep,
  startServer,
  strongPassword,
  userRow,
} from './support.js';

/** Default re-authentication window (10 min): a fresh login may act without the password. */
let server: SecurityServer;
/** A 1 s window: after 1.5 s every sensitive action needs the current password. */
let strict: SecurityServer;
beforeAll(async () => {
  [server, strict] = await Promise.all([
    startServer(),
    startServer({ args: ['--reauth-window', '1s'] }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.stop(), strict?.stop()]);
});

/** Two browsers logged in to one new account. */
async function twoSessions(on: SecurityServer, remember = false) {
  const first = await loggedIn(on);
  const b = on.browser();
  await b.login(first.username, first.password, remember);
  return { a: first.browser, b, username: first.username, password: first.password };
}

async function sessionId(browser: Browser): Promise<string> {
  const me = await browser.whoami();
  expect(me, 'logged in').not.toBeNull();
  return me?.session.id as string;
}

function countRows(on: SecurityServer, table: string, userId: string): number {
  return inspect(on, (db) => {
    const row = db.prepare(`SELECT count(*) AS n FROM ${table} WHERE user_id = ?`).get(userId) as {
      n: number;
    };
    return row.n;
  });
}

describe('D. session management features', () => {
  it('23: after a password change (API) the user can end all other sessions; B gets 401', async () => {
    const { a, b, username, password } = await twoSessions(server);
    const newPassword = strongPassword('new');
    const res = await a.postJson('/api/password', { newPassword });
    expect(res.status, res.body).toBe(204);
    expect((await b.me()).status).toBe(401);
    expect((await a.me()).status).toBe(200);
    expect((await server.browser().loginApi(username, password)).status).toBe(401);
    expect((await server.browser().loginApi(username, newPassword)).status).toBe(200);

    // The option is a real choice: signOutOthers: false keeps the other session.
    const keep = await twoSessions(server);
    const kept = await keep.a.postJson('/api/password', {
      newPassword: strongPassword('new'),
      signOutOthers: false,
    });
    expect(kept.status, kept.body).toBe(204);
    expect((await keep.b.me()).status).toBe(200);
  });

  it('23: the HTML password form offers "sign out other sessions", checked, and honours it', async () => {
    const { a, b } = await twoSessions(server);
    const page = await a.page('/password');
    expect(page.status).toBe(200);
    const checkbox = (page.body.match(/<input\b[^>]*>/gi) ?? []).find((tag) =>
      /name="sign_out_others"/.test(tag),
    );
    expect(checkbox, 'a sign_out_others input').toBeDefined();
    expect(checkbox).toMatch(/type="checkbox"/);
    expect(checkbox).toMatch(/\bchecked\b/);
    const res = await a.postForm('/password', {
      new_password: strongPassword('new'),
      sign_out_others: 'on',
      csrf: csrfFrom(page.body, '/password'),
    });
    expect([200, 303], res.body).toContain(res.status);
    expect((await b.me()).status).toBe(401);
    expect((await a.me()).status).toBe(200);
  });

  it('24: users list and revoke their sessions (API): list, revoke B, B gets 401', async () => {
    const { a, b } = await twoSessions(server);
    const idA = await sessionId(a);
    const idB = await sessionId(b);
    const list = await a.request('GET', '/api/sessions');
    expect(list.status).toBe(200);
    const sessions = list.json<{ sessions: Array<{ id: string; current: boolean }> }>().sessions;
    // A and B (and the session the sign-up itself started), each exactly once.
    const ids = sessions.map((s) => s.id);
    expect(ids).toEqual(expect.arrayContaining([idA, idB]));
    expect(new Set(ids).size).toBe(ids.length);
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    expect(sessions.find((s) => s.id === idA)?.current).toBe(true);
    expect(sessions.find((s) => s.id === idB)?.current).toBe(false);

    // Someone else's session id is not found and stays alive.
    const stranger = await loggedIn(server);
    const strangerId = await sessionId(stranger.browser);
    expect(ids).not.toContain(strangerId);
    const foreign = await a.request('DELETE', `/api/sessions/${strangerId}`);
    expect(foreign.status).toBe(404);
    expect((await stranger.browser.me()).status).toBe(200);

    const revoked = await a.request('DELETE', `/api/sessions/${idB}`);
    expect(revoked.status, revoked.body).toBe(204);
    expect((await b.me()).status).toBe(401);
    expect((await a.me()).status).toBe(200);
  });

  it('24: users list and revoke their sessions (HTML): /sessions, revoke one, revoke others', async () => {
    const { a, b, username, password } = await twoSessions(server);
    const idB = await sessionId(b);
    const page = await a.page('/sessions');
    expect(page.status).toBe(200);
    expect(page.body).toContain(idB);
    const res = await a.postForm('/sessions/revoke', { id: idB, csrf: csrfFrom(page.body) });
    expect(res.status, res.body).toBe(303);
    expect((await b.me()).status).toBe(401);
    expect((await a.me()).status).toBe(200);

    const c = server.browser();
    await c.login(username, password);
    const d = server.browser();
    await d.login(username, password);
    const others = await a.postForm('/sessions/revoke-others', { csrf: await a.csrf('/sessions') });
    expect(others.status, others.body).toBe(303);
    expect((await c.me()).status).toBe(401);
    expect((await d.me()).status).toBe(401);
    expect((await a.me()).status).toBe(200);
  });

  it('25: disabling the account kills all its sessions and remember-me tokens', async () => {
    const { a, b, username, password } = await twoSessions(server, true);
    const userId = String(userRow(server, username)?.id);
    const rememberCookie = b.remember as string;
    expect(rememberCookie, 'remember-me cookie issued').toBeTruthy();
    expect(countRows(server, 'latchkey_remember', userId)).toBeGreaterThan(0);

    const res = await a.postJson('/api/account/disable', {});
    expect(res.status, res.body).toBe(204);
    expect((await a.me()).status).toBe(401);
    expect((await b.me()).status).toBe(401);
    const thief = server.browser();
    thief.jar.set(REMEMBER, rememberCookie);
    expect((await thief.me()).status).toBe(401);
    expect(thief.session).toBeUndefined();
    expect(countRows(server, 'latchkey_sessions', userId)).toBe(0);
    expect(countRows(server, 'latchkey_remember', userId)).toBe(0);
    expect(userRow(server, username)?.disabled).toBe(1);
    const login = await server.browser().loginApi(username, password);
    expect(login.status).toBe(401);
    expect(login.json()).toEqual({ error: 'invalid_credentials' });
  });

  it('25: the HTML account-disable form does the same', async () => {
    const { a, b, username } = await twoSessions(server, true);
    const userId = String(userRow(server, username)?.id);
    const res = await a.postForm('/account/disable', { csrf: await a.csrf('/profile') });
    expect([200, 303], res.body).toContain(res.status);
    expect((await a.me()).status).toBe(401);
    expect((await b.me()).status).toBe(401);
    expect(countRows(server, 'latchkey_sessions', userId)).toBe(0);
    expect(countRows(server, 'latchkey_remember', userId)).toBe(0);
  });

  it('25: deleting the account (CLI user remove) kills its sessions and remember-me tokens', async () => {
    const { a, b, username } = await twoSessions(server, true);
    const userId = String(userRow(server, username)?.id);
    const rememberCookie = b.remember as string;
    await cli(server, ['user', 'remove', username]);
    expect((await a.me()).status).toBe(401);
    const thief = server.browser();
    thief.jar.set(REMEMBER, rememberCookie);
    expect((await thief.me()).status).toBe(401);
    expect(countRows(server, 'latchkey_sessions', userId)).toBe(0);
    expect(countRows(server, 'latchkey_remember', userId)).toBe(0);
  });

  describe('26: sensitive changes need the current password or a recent login', () => {
    const wrong = 'definitely-not-it-123';
    const required = { error: 'reauthentication_required' };

    it('26: API password change, revocations and disable → 403 without (or with a wrong) password; 204 with it', async () => {
      const { a, b, username, password } = await twoSessions(strict);
      const idB = await sessionId(b);
      await sleep(1500);
      const attempts: Array<[string, (extra: Record<string, unknown>) => Promise<unknown>]> = [
        ['password', (x) => a.postJson('/api/password', { newPassword: strongPassword(), ...x })],
        ['revoke one', (x) => a.request('DELETE', `/api/sessions/${idB}`, { json: x })],
        ['revoke others', (x) => a.postJson('/api/sessions/revoke-others', x)],
        ['disable', (x) => a.postJson('/api/account/disable', x)],
      ];
      for (const [label, send] of attempts) {
        for (const extra of [{}, { currentPassword: wrong }]) {
          const res = (await send(extra)) as Awaited<ReturnType<Browser['me']>>;
          expect(res.status, `${label} ${JSON.stringify(extra)}: ${res.body}`).toBe(403);
          expect(res.json()).toEqual(required);
        }
      }
      // Nothing changed.
      expect((await b.me()).status).toBe(200);
      expect(userRow(strict, username)?.disabled).toBe(0);
      expect((await strict.browser().loginApi(username, password)).status).toBe(200);

      // The current password unlocks it.
      const ok = await a.request('DELETE', `/api/sessions/${idB}`, {
        json: { currentPassword: password },
      });
      expect(ok.status, ok.body).toBe(204);
      expect((await b.me()).status).toBe(401);
    });

    it('26: HTML forms for password, revocations and disable → 403 page without the current password', async () => {
      const { a, b, username } = await twoSessions(strict);
      const idB = await sessionId(b);
      await sleep(1500);
      const csrf = await a.csrf('/sessions');
      const forms: Array<[string, Record<string, string>]> = [
        ['/password', { new_password: strongPassword(), sign_out_others: 'on' }],
        ['/sessions/revoke', { id: idB }],
        ['/sessions/revoke-others', {}],
        ['/account/disable', {}],
      ];
      for (const [path, fields] of forms) {
        const extras: Array<Record<string, string>> = [{}, { current_password: wrong }];
        for (const extra of extras) {
          const res = await a.postForm(path, { ...fields, ...extra, csrf });
          expect(res.status, `${path} ${JSON.stringify(extra)}`).toBe(403);
          expect(res.headers.get('content-type') ?? '').toMatch(/text\/html/);
        }
      }
      expect((await b.me()).status).toBe(200);
      expect(userRow(strict, username)?.disabled).toBe(0);
    });

    it('26: a recent password login needs no password (within the window)', async () => {
      const { a, b } = await twoSessions(server);
      const res = await a.postJson('/api/sessions/revoke-others', {});
      expect(res.status, res.body).toBe(204);
      expect((await b.me()).status).toBe(401);
    });
  });
});
