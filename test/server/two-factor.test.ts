import { Secret, TOTP } from 'otpauth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Latchkey, MemoryStore, type SessionEvent } from '../../src/index.js';
import { type AppServer, Jar, serveApp } from '../helpers/app-server.js';
import { FakeClock } from '../helpers/clock.js';

const PASSWORD = 'correct horse battery';
const NAVIGATE = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

let server: AppServer;
let base: string;
let clock: FakeClock;
let auth: Latchkey;
let events: SessionEvent[];

beforeEach(async () => {
  clock = new FakeClock(Date.now());
  const store = new MemoryStore();
  events = [];
  auth = new Latchkey({
    store,
    users: store,
    throttle: { store },
    remember: { store },
    secondFactor: { store, secretKey: 'a test key of at least thirty-two characters' },
    clock: clock.now,
    onEvent: (event) => events.push(event),
  });
  await auth.createUser('ada', PASSWORD);
  server = await serveApp(() => ({ latchkey: auth, store }));
  base = server.base;
});
afterEach(() => server.close());

function page(jar: Jar, path: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    redirect: 'manual',
    headers: { ...NAVIGATE, cookie: jar.header },
  }).then((response) => jar.take(response));
}

async function csrfOf(jar: Jar, path: string): Promise<string> {
  const text = await (await page(jar, path)).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(text)?.[1];
  if (!csrf) throw new Error(`no form on ${path}: ${text.slice(0, 300)}`);
  return csrf;
}

async function submit(
  jar: Jar,
  from: string,
  action: string,
  fields: Record<string, string>,
): Promise<Response> {
  const csrf = await csrfOf(jar, from);
  return jar.take(
    await fetch(`${base}${action}`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        ...NAVIGATE,
        origin: base,
        cookie: jar.header,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ ...fields, csrf }).toString(),
    }),
  );
}

async function api(jar: Jar, path: string, body?: unknown): Promise<Response> {
  const init: RequestInit =
    body === undefined
      ? { headers: { accept: 'application/json', cookie: jar.header } }
      : {
          method: 'POST',
          headers: {
            accept: 'application/json',
            'content-type': 'application/json',
            origin: base,
            cookie: jar.header,
          },
          body: JSON.stringify(body),
        };
  return jar.take(await fetch(`${base}${path}`, { ...init, redirect: 'manual' }));
}

function code(secret: string, stepOffset = 0): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secret),
    timestamp: clock.now() + stepOffset * 30_000,
  });
}

/** Logs in with the HTML form and turns TOTP on; gives the key and the recovery codes. */
async function enrolThroughPages(jar: Jar): Promise<{ secret: string; codes: string[] }> {
  const login = await submit(jar, '/login', '/login', { username: 'ada', password: PASSWORD });
  expect(login.status).toBe(303);
  expect(await (await page(jar, '/profile/two-factor')).text()).toContain(
    'Authenticator app: <strong>off</strong>',
  );
  const start = await submit(jar, '/profile/two-factor', '/profile/two-factor/totp', {});
  expect(start.status).toBe(200);
  const enrolPage = await start.text();
  expect(enrolPage).toMatch(/<figure class="qr"><svg[^>]*>/);
  const key = /Key: <code>([A-Z2-7 ]+)<\/code>/.exec(enrolPage)?.[1];
  if (!key) throw new Error('no key on the enrolment page');
  const secret = key.replaceAll(' ', '');
  const factorId = /name="id" value="([^"]+)"/.exec(enrolPage)?.[1] ?? '';
  const csrf = /name="csrf" value="([^"]+)"/.exec(enrolPage)?.[1] ?? '';
  const confirm = jar.take(
    await fetch(`${base}/profile/two-factor/totp/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        ...NAVIGATE,
        origin: base,
        cookie: jar.header,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ id: factorId, code: code(secret), csrf }).toString(),
    }),
  );
  expect(confirm.status).toBe(200);
  const codes = [...(await confirm.text()).matchAll(/<li><code>([a-z2-7-]+)<\/code><\/li>/g)].map(
    (match) => match[1] as string,
  );
  expect(codes).toHaveLength(10);
  clock.advance(30_000);
  return { secret, codes };
}

describe('two-factor pages', () => {
  it('enrol, log out, then a password login asks for the code and the code signs in', async () => {
    const jar = new Jar();
    const { secret } = await enrolThroughPages(jar);
    // The session that confirmed the code is at level 2.
    expect(await (await api(jar, '/api/me')).json()).toMatchObject({ user: { username: 'ada' } });
    expect(events.some((event) => event.type === 'second_factor_added')).toBe(true);
    await submit(jar, '/dashboard', '/logout', {});

    const login = await submit(jar, '/login?next=/sessions', '/login', {
      username: 'ada',
      password: PASSWORD,
      next: '/sessions',
    });
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('/login/second-factor?next=%2Fsessions');
    expect(jar.has('__Host-latchkey-2fa')).toBe(true);
    expect(jar.has('__Host-session')).toBe(false);
    // The pending login opens nothing else.
    expect((await page(jar, '/dashboard')).status).toBe(303);
    expect((await api(jar, '/api/me')).status).toBe(401);

    const wrong = await submit(jar, '/login/second-factor?next=/sessions', '/login/second-factor', {
      kind: 'totp',
      code: '000000',
      next: '/sessions',
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('That code is not right.');
    const right = await submit(jar, '/login/second-factor?next=/sessions', '/login/second-factor', {
      kind: 'totp',
      code: code(secret),
      next: '/sessions',
    });
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('/sessions');
    expect(jar.has('__Host-latchkey-2fa')).toBe(false);
    expect((await page(jar, '/sessions')).status).toBe(200);
  });

  it('a recovery code signs in once through the page', async () => {
    const jar = new Jar();
    const { codes } = await enrolThroughPages(jar);
    await submit(jar, '/dashboard', '/logout', {});
    await submit(jar, '/login', '/login', { username: 'ada', password: PASSWORD });
    const form = await (await page(jar, '/login/second-factor?recovery=1')).text();
    expect(form).toContain('Recovery code');
    const used = await submit(jar, '/login/second-factor?recovery=1', '/login/second-factor', {
      kind: 'recovery',
      code: codes[0] as string,
    });
    expect(used.status).toBe(303);
    expect(await (await page(jar, '/profile/two-factor')).text()).toContain(
      '9 recovery codes left.',
    );
    expect(events.some((event) => event.type === 'recovery_code_used')).toBe(true);
  });
});

describe('two-factor JSON API', () => {
  async function enrolThroughApi(jar: Jar): Promise<string> {
    expect((await api(jar, '/api/login', { username: 'ada', password: PASSWORD })).status).toBe(
      200,
    );
    const begun = await api(jar, '/api/two-factor/totp', {});
    expect(begun.status).toBe(201);
    const enrolment = (await begun.json()) as { factorId: string; secret: string; uri: string };
    expect(enrolment.uri).toMatch(/^otpauth:\/\/totp\//);
    const confirmed = await api(jar, '/api/two-factor/totp/confirm', {
      factorId: enrolment.factorId,
      code: code(enrolment.secret),
    });
    expect(confirmed.status).toBe(200);
    expect(((await confirmed.json()) as { recoveryCodes: string[] }).recoveryCodes).toHaveLength(
      10,
    );
    clock.advance(30_000);
    return enrolment.secret;
  }

  it('login answers second_factor_required with the methods, and the code completes it', async () => {
    const jar = new Jar();
    const secret = await enrolThroughApi(jar);
    await api(jar, '/api/logout', {});
    const pending = await api(jar, '/api/login', { username: 'ada', password: PASSWORD });
    expect(pending.status).toBe(401);
    expect(await pending.json()).toEqual({
      error: 'second_factor_required',
      methods: ['totp', 'recovery'],
    });
    expect((await api(jar, '/api/me')).status).toBe(401);
    const wrong = await api(jar, '/api/login/second-factor', { type: 'totp', code: '111111' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'invalid_code' });
    const done = await api(jar, '/api/login/second-factor', { type: 'totp', code: code(secret) });
    expect(done.status).toBe(200);
    expect(await done.json()).toMatchObject({ user: { username: 'ada' }, aal: 2 });
    expect((await api(jar, '/api/me')).status).toBe(200);
    const status = (await (await api(jar, '/api/two-factor')).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ enabled: true, recoveryCodesLeft: 10 });
    expect(JSON.stringify(status)).not.toContain(secret);
  });

  it('without a pending login or a session, the second step is no_pending_login', async () => {
    const jar = new Jar();
    const response = await api(jar, '/api/login/second-factor', { type: 'totp', code: '123456' });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'no_pending_login' });
  });

  it('a remembered (AAL1) session must step up before it may remove the second factor', async () => {
    const jar = new Jar();
    const secret = await enrolThroughApi(jar);
    await api(jar, '/api/logout', {});
    await api(jar, '/api/login', { username: 'ada', password: PASSWORD, remember: true });
    await api(jar, '/api/login/second-factor', { type: 'totp', code: code(secret) });
    clock.advance(30_000);
    // The session ends; the remember-me cookie brings a new one, at level 1.
    jar.drop('__Host-session');
    const me = await api(jar, '/api/me');
    expect(me.status).toBe(200);
    const { id } = ((await (await api(jar, '/api/two-factor')).json()) as { totp: { id: string } })
      .totp;
    const refused = await api(jar, '/api/two-factor/remove', { id, currentPassword: PASSWORD });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: 'second_factor_required' });
    const stepped = await api(jar, '/api/login/second-factor', {
      type: 'totp',
      code: code(secret),
    });
    expect(stepped.status).toBe(200);
    expect(await stepped.json()).toMatchObject({ aal: 2 });
    const removed = await api(jar, '/api/two-factor/remove', { id, currentPassword: PASSWORD });
    expect(removed.status).toBe(204);
    expect(await (await api(jar, '/api/two-factor')).json()).toMatchObject({ enabled: false });
  });

  it('enrolling needs a recent password login (or the password)', async () => {
    const jar = new Jar();
    expect((await api(jar, '/api/login', { username: 'ada', password: PASSWORD })).status).toBe(
      200,
    );
    clock.advance(11 * 60_000);
    const stale = await api(jar, '/api/two-factor/totp', {});
    expect(stale.status).toBe(403);
    expect(await stale.json()).toEqual({ error: 'reauthentication_required' });
    const confirmed = await api(jar, '/api/two-factor/totp', { currentPassword: PASSWORD });
    expect(confirmed.status).toBe(201);
  });
});
