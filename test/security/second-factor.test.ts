/**
 * Rows 15.1-15.3: the secrets of second factors (the TOTP secret and its codes, recovery codes,
 * the pending-login cookie) are never logged, never in a URL, and stored sealed or hashed.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Browser,
  csrfFrom,
  inspect,
  type Res,
  type SecurityServer,
  startServer,
  strongPassword,
  uniqueName,
} from './support.js';

const PENDING = '__Host-latchkey-2fa';

let server: SecurityServer;
const username = uniqueName('mfa');
const password = strongPassword('mfa');
let secret = '';
let recoveryCodes: string[] = [];
/** Every secret the run used: the TOTP secret and URI, codes, recovery codes, pending cookies. */
const secrets = new Set<string>();
/** Every Location header and request path the run produced. */
const urls: string[] = [];

function seen(res: Res): Res {
  const location = res.headers.get('location');
  if (location) urls.push(location);
  const pending = res.cookie(PENDING);
  if (pending?.value) secrets.add(pending.value);
  return res;
}

function code(offsetSteps = 0): string {
  const value = TOTP.generate({
    secret: Secret.fromBase32(secret),
    timestamp: Date.now() + offsetSteps * 30_000,
  });
  secrets.add(value);
  return value;
}

/** A password login that stops at the second step (a pending login in `browser`). */
async function pendingLogin(browser: Browser): Promise<void> {
  const res = seen(await browser.loginApi(username, password));
  expect(res.status).toBe(401);
  expect(res.json()).toMatchObject({ error: 'second_factor_required' });
}

beforeAll(async () => {
  server = await startServer();
  const owner = server.browser();
  expect(seen(await owner.signup(username, password)).status).toBe(201);
  const begun = seen(await owner.postJson('/api/two-factor/totp', {}));
  expect(begun.status).toBe(201);
  const enrolment = begun.json<{ factorId: string; secret: string; uri: string }>();
  secret = enrolment.secret;
  secrets.add(secret);
  secrets.add(enrolment.uri);
  const confirmed = seen(
    await owner.postJson('/api/two-factor/totp/confirm', {
      factorId: enrolment.factorId,
      code: code(),
    }),
  );
  expect(confirmed.status).toBe(200);
  recoveryCodes = confirmed.json<{ recoveryCodes: string[] }>().recoveryCodes;
  for (const recovery of recoveryCodes) secrets.add(recovery);

  // A TOTP login (the next time step: the enrolment used this one), a wrong code, a recovery code.
  const laptop = server.browser();
  await pendingLogin(laptop);
  const bad = seen(
    await laptop.postJson('/api/login/second-factor', { type: 'totp', code: '000000' }),
  );
  expect(bad.status).toBe(401);
  const good = seen(
    await laptop.postJson('/api/login/second-factor', { type: 'totp', code: code(1) }),
  );
  expect(good.status).toBe(200);
  const phone = server.browser();
  await pendingLogin(phone);
  const recovered = seen(
    await phone.postJson('/api/login/second-factor', {
      type: 'recovery',
      code: recoveryCodes[0],
    }),
  );
  expect(recovered.status).toBe(200);
  // The same through the pages, whose redirects are URLs a secret could leak into.
  const desk = server.browser();
  const form = seen(await desk.loginForm(username, password, { next: '/sessions' }));
  expect(form.status).toBe(303);
  const step = await desk.page(form.headers.get('location') ?? '');
  expect(step.status).toBe(200);
  const stepped = seen(
    await desk.postForm('/login/second-factor', {
      kind: 'recovery',
      code: recoveryCodes[1] as string,
      next: '/sessions',
      csrf: csrfFrom(step.body, '/login/second-factor'),
    }),
  );
  expect(stepped.status).toBe(303);
  expect(stepped.headers.get('location')).toBe('/sessions');
  // The access log line of the last request is written by another process: wait for it.
  await vi.waitFor(
    () => {
      const logged = server.audit().some((line) => line.event === 'recovery_code_used');
      if (!logged) throw new Error('the recovery code use is not in the audit log yet');
    },
    { timeout: 5000, interval: 20 },
  );
}, 60_000);
afterAll(() => server?.stop());

describe('15: second-factor secrets', () => {
  it('15.1: the TOTP secret, codes, recovery codes and pending cookies never appear in the audit log or the server output', () => {
    const audit = readFileSync(server.auditLog, 'utf8');
    const output = server.output();
    expect(secrets.size).toBeGreaterThanOrEqual(14);
    expect(audit).toContain('recovery_code_used');
    for (const value of secrets) {
      expect(audit.includes(value), `audit log contains ${value.slice(0, 4)}…`).toBe(false);
      expect(output.includes(value), `server output contains ${value.slice(0, 4)}…`).toBe(false);
    }
  });

  it('15.2: no second-factor secret is ever in a URL, and a code in the query string is ignored', async () => {
    expect(urls.length).toBeGreaterThanOrEqual(2);
    // The access log's paths too (it drops queries, but a secret must not reach it at all).
    const paths = server
      .output()
      .split('\n')
      .flatMap((line) => /"(?:path|url|route)":"([^"]*)"/.exec(line)?.[1] ?? []);
    urls.push(...paths);
    for (const url of urls) {
      for (const value of secrets) expect(url.includes(value), url).toBe(false);
    }
    // The forms that take codes post them; none is read from the URL.
    const browser = server.browser();
    await pendingLogin(browser);
    const form = await browser.page('/login/second-factor');
    expect(form.status).toBe(200);
    for (const tag of form.body.match(/<form[^>]*>/g) ?? []) expect(tag).toMatch(/method="post"/);
    const viaQuery = await browser.page(`/login/second-factor?code=${code(1)}&type=totp`);
    expect(viaQuery.status).toBe(200);
    expect(viaQuery.cookie('__Host-session')).toBeUndefined();
    expect((await browser.me()).status).toBe(401);
  });

  it('15.3: the TOTP secret is stored sealed and recovery codes only as SHA-256, never as given', () => {
    const rows = inspect(server, (db) =>
      db.prepare('SELECT kind, secret FROM latchkey_factors').all(),
    ) as Array<{ kind: string; secret: string }>;
    const totp = rows.filter((row) => row.kind === 'totp');
    expect(totp).toHaveLength(1);
    const stored = totp[0]?.secret ?? '';
    expect(stored).not.toContain(secret);
    expect(Buffer.from(stored, 'base64url').toString('latin1')).not.toContain(secret);
    const hashes = rows.filter((row) => row.kind === 'recovery').map((row) => row.secret);
    // Ten issued, two used (deleted).
    expect(hashes).toHaveLength(8);
    for (const recovery of recoveryCodes) {
      expect(hashes).not.toContain(recovery);
      for (const hash of hashes) expect(hash).not.toContain(recovery);
    }
    const unused = recoveryCodes.slice(2).map((recovery) => {
      const normalised = recovery.replace(/[\s-]/g, '').toUpperCase();
      return createHash('sha256').update(normalised).digest('base64url');
    });
    expect([...hashes].sort()).toEqual(unused.sort());
  });
});
