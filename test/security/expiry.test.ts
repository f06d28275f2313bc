/** Checklist C (items 14-22): expiry, sliding refresh, rotation, logout and transport. */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, tempDir } from '../helpers/cli.js';
import {
  isClearing,
  loggedIn,
  newAccount,
  REMEMBER,
  type Res,
  SESSION,
  type SecurityServer,
  sessionRow,
  sleep,
  startServer,
} from './support.js';

let server: SecurityServer;
beforeAll(async () => {
  server = await startServer({
    args: ['--idle-timeout', '2s', '--absolute-timeout', '6s', '--reauth-window', '1s'],
  });
});
afterAll(() => server?.stop());

/** Asserts a Set-Cookie that removes `name` the way RFC 6265bis and the __Host- prefix need. */
function expectCleared(res: Res, name: string): void {
  const cookie = res.cookie(name);
  expect(cookie, `${name} is cleared (Set-Cookie present)`).toBeDefined();
  if (!cookie) return;
  expect(cookie.value, cookie.raw).toBe('');
  expect(isClearing(cookie), `${cookie.raw}: Max-Age=0 or a past Expires`).toBe(true);
  expect(cookie.attributes.get('path'), cookie.raw).toBe('/');
  expect(cookie.attributes.has('domain'), cookie.raw).toBe(false);
  expect(cookie.attributes.has('secure'), cookie.raw).toBe(true);
}

describe('C. expiry, sliding refresh, logout', () => {
  it('14: idle timeout is enforced server-side: idle 2 s, sleep 3 s, 401 and the record is gone', async () => {
    const { browser } = await loggedIn(server);
    const id = (await browser.whoami())?.session.id as string;
    expect(sessionRow(server, id)).toBeDefined();
    await sleep(3000);
    const res = await browser.me({ keepJar: true });
    expect(res.status).toBe(401);
    expect(sessionRow(server, id), 'the expired record is deleted').toBeUndefined();
  });

  it('15: absolute lifetime: a request every 0.5 s, still 401 at about 6 s', async () => {
    const account = await newAccount(server);
    const before = Date.now();
    const { browser } = await loggedIn(server, { account });
    const issued = Date.now();
    const log: Array<{ sent: number; at: number; status: number }> = [];
    while (Date.now() - issued < 7500) {
      await sleep(500);
      const sent = Date.now();
      const res = await browser.me({ keepJar: true });
      log.push({ sent, at: Date.now(), status: res.status });
    }
    for (const { sent, at, status } of log) {
      // The server-side age is at most (at - before): young enough → must still be valid.
      if (at - before < 5800) expect(status, `at +${at - before} ms`).toBe(200);
      // The server-side age is at least (sent - issued): past 6 s → must be refused.
      if (sent - issued > 6100) expect(status, `at +${sent - issued} ms`).toBe(401);
    }
    expect(log.some(({ status }) => status === 200)).toBe(true);
    expect(log.some(({ status }) => status === 401)).toBe(true);
  }, 20_000);

  it('16: sliding refresh moves the idle deadline, never the absolute one; createdAt never changes', async () => {
    const { browser } = await loggedIn(server);
    const first = (await browser.whoami())?.session;
    expect(first).toBeDefined();
    const row1 = sessionRow(server, first?.id as string);
    await sleep(1300);
    const second = (await browser.whoami())?.session;
    await sleep(1300);
    const third = (await browser.whoami())?.session;
    expect(second?.id).toBe(first?.id);
    expect(third?.id).toBe(first?.id);
    expect(Date.parse(third?.idleExpiresAt as string)).toBeGreaterThan(
      Date.parse(first?.idleExpiresAt as string),
    );
    expect(third?.absoluteExpiresAt).toBe(first?.absoluteExpiresAt);
    expect(third?.createdAt).toBe(first?.createdAt);
    expect(Date.parse(third?.idleExpiresAt as string)).toBeLessThanOrEqual(
      Date.parse(third?.absoluteExpiresAt as string),
    );
    const row3 = sessionRow(server, first?.id as string);
    expect(row3?.created_at).toBe(row1?.created_at);
    expect(row3?.absolute_expires_at).toBe(row1?.absolute_expires_at);
    expect(Number(row3?.idle_expires_at)).toBeGreaterThan(Number(row1?.idle_expires_at));
    // 2.6 s after login with a 2 s idle timeout: alive only because the refresh slid.
    expect((await browser.me()).status).toBe(200);
  });

  it('17: expiry is enforced server-side only: an expired cookie replayed is refused every time', async () => {
    const { browser } = await loggedIn(server);
    const token = browser.session as string;
    await sleep(2600);
    for (let i = 0; i < 3; i++) {
      const res = await browser.me({ cookie: `${SESSION}=${token}` });
      expect(res.status).toBe(401);
      const page = await browser.page('/dashboard', { cookie: `${SESSION}=${token}` });
      expect(page.status).toBe(303);
      expect(page.headers.get('location')).toMatch(/^\/login/);
    }
  });

  it('18: a rotated ID (re-login, re-authentication) dies at once or after a short grace period', async () => {
    const { browser, username, password } = await loggedIn(server);
    const original = browser.session as string;
    // Re-authentication with the password, outside the 1 s window, rotates the session.
    await sleep(1200);
    const reauth = await browser.postJson('/api/sessions/revoke-others', {
      currentPassword: password,
    });
    expect(reauth.status, reauth.body).toBe(204);
    const rotated = browser.session as string;
    expect(rotated).not.toBe(original);
    await sleep(1000);
    expect((await browser.me({ cookie: `${SESSION}=${original}` })).status).toBe(401);
    expect((await browser.me()).status).toBe(200);
    // Logging in again in the same browser rotates too.
    const relogin = await browser.loginApi(username, password);
    expect(relogin.status).toBe(200);
    expect(browser.session).not.toBe(rotated);
    expect((await browser.me({ cookie: `${SESSION}=${rotated}` })).status).toBe(401);
  });

  it('19: logout deletes the record: a copied cookie replayed after POST /logout gets 401', async () => {
    for (const via of ['form', 'api'] as const) {
      const { browser } = await loggedIn(server);
      const copy = browser.clone();
      const id = (await browser.whoami())?.session.id as string;
      expect(sessionRow(server, id)).toBeDefined();
      const res =
        via === 'form'
          ? await browser.postForm('/logout', { csrf: await browser.csrf() })
          : await browser.request('POST', '/api/logout');
      expect(res.status).toBe(via === 'form' ? 303 : 204);
      expect((await copy.me()).status).toBe(401);
      expect(sessionRow(server, id), `${via}: no record after logout`).toBeUndefined();
    }
  });

  it('20: logout clears the cookie: empty value, Max-Age=0 or past Expires, Path=/, no Domain', async () => {
    const form = await loggedIn(server, { remember: true });
    const html = await form.browser.postForm('/logout', {
      csrf: await form.browser.csrf(),
    });
    expect(html.status).toBe(303);
    expectCleared(html, SESSION);
    expectCleared(html, REMEMBER);

    const api = await loggedIn(server, { remember: true });
    const res = await api.browser.request('POST', '/api/logout');
    expect(res.status).toBe(204);
    expectCleared(res, SESSION);
    expectCleared(res, REMEMBER);

    const everywhere = await loggedIn(server);
    const all = await everywhere.browser.request('POST', '/api/logout-everywhere');
    expect(all.status).toBe(204);
    expectCleared(all, SESSION);
  });

  it('21: logout sends Clear-Site-Data: "cache", "storage" (the session cookies are cleared by Set-Cookie; the device cookie stays)', async () => {
    const expected = '"cache", "storage"';
    const a = await loggedIn(server);
    const html = await a.browser.postForm('/logout', {
      csrf: await a.browser.csrf(),
    });
    expect(html.status).toBe(303);
    expect(html.headers.get('clear-site-data')).toBe(expected);
    const b = await loggedIn(server);
    const api = await b.browser.request('POST', '/api/logout');
    expect(api.status).toBe(204);
    expect(api.headers.get('clear-site-data')).toBe(expected);
    const c = await loggedIn(server);
    const everywhere = await c.browser.postForm('/logout-everywhere', {
      csrf: await c.browser.csrf('/sessions'),
    });
    expect(everywhere.status).toBe(303);
    expect(everywhere.headers.get('clear-site-data')).toBe(expected);
    const d = await loggedIn(server);
    const apiEverywhere = await d.browser.request('POST', '/api/logout-everywhere');
    expect(apiEverywhere.status).toBe(204);
    expect(apiEverywhere.headers.get('clear-site-data')).toBe(expected);
  });
});

describe('22: no plain-HTTP fallback when TLS is on; HSTS max-age >= 31536000', () => {
  const paths = ['/login', '/healthz', '/api/me', '/no-such-page'];

  function hstsMaxAge(value: string | null): number {
    const match = /(?:^|;)\s*max-age=(\d+)/i.exec(value ?? '');
    return match ? Number(match[1]) : -1;
  }

  it('22: --behind-https sends Strict-Transport-Security max-age >= 31536000 on every response', async () => {
    const https = await startServer({ args: ['--behind-https'] });
    try {
      const browser = https.browser();
      const responses = [
        ...(await Promise.all(paths.map((path) => browser.page(path)))),
        await browser.loginApi('nobody', 'not the password'),
      ];
      for (const res of responses) {
        expect(hstsMaxAge(res.headers.get('strict-transport-security'))).toBeGreaterThanOrEqual(
          31_536_000,
        );
      }
    } finally {
      await https.stop();
    }
  });

  it('22: plain http without --behind-https sends no HSTS (it would be ignored or harmful)', async () => {
    const browser = server.browser();
    for (const path of paths) {
      const res = await browser.page(path);
      expect(res.headers.get('strict-transport-security'), path).toBeNull();
    }
  });

  it('22: --tls-cert/--tls-key serve HTTPS with HSTS and never answer plain HTTP on that port', async () => {
    const temp = tempDir();
    const cert = join(temp.dir, 'cert.pem');
    const key = join(temp.dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const secret = join(temp.dir, 'secret');
    writeFileSync(secret, randomBytes(32).toString('hex'), { mode: 0o600 });
    const child = spawn(
      process.execPath,
      [
        CLI,
        'serve',
        '--port',
        '0',
        '--db',
        temp.db,
        '--secret-file',
        secret,
        '--audit-log',
        join(temp.dir, 'audit.log'),
        '--tls-cert',
        cert,
        '--tls-key',
        key,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let output = '';
        const timer = setTimeout(() => reject(new Error(`no start: ${output}`)), 20_000);
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          const found = /listening on (https?:\/\/\S+)/.exec(output)?.[1];
          if (found) {
            clearTimeout(timer);
            resolve(found);
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`serve exited with ${code}: ${output}`));
        });
      });
      expect(url).toMatch(/^https:\/\//);
      const port = new URL(url).port;
      const answer = await new Promise<{ status: number; hsts: string | undefined }>(
        (resolve, reject) => {
          const req = httpsRequest(
            { host: '127.0.0.1', port, path: '/login', ca: readFileSync(cert) },
            (res) => {
              res.resume();
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  hsts: res.headers['strict-transport-security'],
                }),
              );
            },
          );
          req.on('error', reject);
          req.end();
        },
      );
      expect(answer.status).toBe(200);
      expect(hstsMaxAge(answer.hsts ?? null)).toBeGreaterThanOrEqual(31_536_000);
      // Plain HTTP to the TLS port gets no page.
      const plain = await fetch(`http://127.0.0.1:${port}/login`).then(
        (res) => res.status,
        () => 0,
      );
      expect(plain === 0 || plain >= 400).toBe(true);
      expect(plain).not.toBe(200);
    } finally {
      child.kill('SIGTERM');
      temp.remove();
    }
  });
});
