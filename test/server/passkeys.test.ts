import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, Latchkey, MemoryStore } from '../../src/index.js';
import { passkeySettings } from '../../src/server/setting-rules.js';
import { resolveSettings } from '../../src/server/settings.js';
import { type AppServer, Jar, serveApp } from '../helpers/app-server.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';

const PASSWORD = 'correct horse battery';

let server: AppServer;
let base: string;
let auth: Latchkey;

beforeEach(async () => {
  const store = new MemoryStore();
  server = await serveApp((origin) => {
    auth = new Latchkey({
      store,
      users: store,
      throttle: { store },
      secondFactor: {
        store,
        secretKey: 'a test key of at least thirty-two characters',
        passkeys: { rpId: 'localhost', origins: [origin] },
      },
    });
    return { latchkey: auth, store };
  }, 'localhost');
  base = server.base;
  await auth.createUser('ada', PASSWORD);
});
afterEach(() => server.close());

async function api(jar: Jar, path: string, body: unknown = {}): Promise<Response> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      accept: 'application/json',
      'content-type': 'application/json',
      origin: base,
      cookie: jar.header,
    },
    body: JSON.stringify(body),
  });
  return jar.take(response);
}

async function loggedIn(): Promise<Jar> {
  const jar = new Jar();
  expect((await api(jar, '/api/login', { username: 'ada', password: PASSWORD })).status).toBe(200);
  return jar;
}

async function registered(jar: Jar, authenticator: SoftAuthenticator): Promise<Response> {
  const begun = await api(jar, '/api/passkeys/register/options');
  expect(begun.status).toBe(200);
  const { options } = (await begun.json()) as {
    options: { challenge: string; user: { id: string } };
  };
  return api(jar, '/api/passkeys/register', {
    response: authenticator.create(options),
    name: 'Laptop',
  });
}

describe('the passkey routes', () => {
  it('serves the scripts as static JavaScript under a CSP without inline script', async () => {
    for (const path of ['/assets/passkeys.js', '/assets/simplewebauthn-browser.js']) {
      const response = await fetch(`${base}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
    }
    const login = await (await fetch(`${base}/login`)).text();
    expect(login).toContain('<script src="/assets/passkeys.js" defer></script>');
    expect(login).toContain('data-passkey="login"');
    expect(login).not.toMatch(/<script>/);
  });

  it('registers a passkey and signs in with it alone; the challenge cookie cannot be replayed', async () => {
    const authenticator = new SoftAuthenticator('localhost', base);
    const owner = await loggedIn();
    const added = await registered(owner, authenticator);
    expect(added.status).toBe(201);
    const body = (await added.json()) as { factor: { name: string }; recoveryCodes: string[] };
    expect(body.factor.name).toBe('Laptop');
    expect(body.recoveryCodes).toHaveLength(10);

    const visitor = new Jar();
    const begun = await api(visitor, '/api/login/passkey/options');
    expect(visitor.has('__Host-latchkey-webauthn')).toBe(true);
    const { options } = (await begun.json()) as { options: { challenge: string } };
    expect(begun.url).not.toContain(options.challenge);
    const challengeCookie = visitor.header;
    const response = authenticator.get(options);
    const signedIn = await api(visitor, '/api/login/passkey', { response });
    expect(signedIn.status).toBe(200);
    expect(await signedIn.json()).toMatchObject({ aal: 2 });
    expect(visitor.has('__Host-latchkey-webauthn')).toBe(false);

    // The same answer with the same cookie, sent again: refused.
    const replay = await fetch(`${base}/api/login/passkey`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base, cookie: challengeCookie },
      body: JSON.stringify({ response }),
    });
    expect(replay.status).toBe(401);
  });

  it('asks for the second factor before a level-1 session adds another passkey', async () => {
    const authenticator = new SoftAuthenticator('localhost', base);
    expect((await registered(await loggedIn(), authenticator)).status).toBe(201);
    // A password login now waits for the passkey; a session restored at level 1 cannot add one.
    const jar = new Jar();
    const login = await api(jar, '/api/login', { username: 'ada', password: PASSWORD });
    expect(await login.json()).toMatchObject({ error: 'second_factor_required' });
    const begun = await api(jar, '/api/login/second-factor/passkey/options');
    const { options } = (await begun.json()) as { options: { challenge: string } };
    const step = await api(jar, '/api/login/second-factor', {
      type: 'passkey',
      response: authenticator.get(options),
    });
    expect(step.status).toBe(200);
    expect(await step.json()).toMatchObject({ aal: 2 });

    const userId = (await auth.findUser('ada'))?.id as string;
    const { token } = await auth.create(userId, { user: { id: userId, username: 'ada' } });
    const weak = new Jar();
    weak.set('__Host-session', token);
    const refused = await api(weak, '/api/passkeys/register/options');
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: 'second_factor_required' });
  });

  it('renames a passkey, and refuses a bad name', async () => {
    const jar = await loggedIn();
    await registered(jar, new SoftAuthenticator('localhost', base));
    const userId = (await auth.findUser('ada'))?.id as string;
    const [passkey] = (await auth.secondFactors?.status(userId))?.passkeys ?? [];
    const id = passkey?.id;
    expect((await api(jar, '/api/two-factor/rename', { id, name: 'Phone' })).status).toBe(204);
    expect((await api(jar, '/api/two-factor/rename', { id, name: '' })).status).toBe(404);
    expect((await auth.secondFactors?.status(userId))?.passkeys[0]?.name).toBe('Phone');
  });
});

describe('passkey settings', () => {
  const settingsOf = (env: Record<string, string>) =>
    resolveSettings({}, { LATCHKEY_SECRET_FILE: '/nonexistent', ...env }).settings;

  it('are off unless --rp-id or --origin is set: never taken from the Host header', () => {
    expect(passkeySettings(settingsOf({}))).toBeNull();
  });

  it('derive one from the other', () => {
    expect(passkeySettings(settingsOf({ LATCHKEY_RP_ID: 'Example.com' }))).toEqual({
      rpId: 'example.com',
      origins: ['https://example.com'],
    });
    expect(
      passkeySettings(
        settingsOf({ LATCHKEY_ORIGIN: 'https://example.com,https://login.example.com' }),
      ),
    ).toEqual({
      rpId: 'example.com',
      origins: ['https://example.com', 'https://login.example.com'],
    });
  });

  it('refuse origins off the RP id, over plain http, or with a path', () => {
    const bad: Record<string, string>[] = [
      // The first origin's host is the RP id: the apex is not on a subdomain's.
      { LATCHKEY_ORIGIN: 'https://login.example.com,https://example.com' },
      { LATCHKEY_RP_ID: 'example.com', LATCHKEY_ORIGIN: 'https://example.org' },
      { LATCHKEY_RP_ID: 'example.com', LATCHKEY_ORIGIN: 'http://example.com' },
      { LATCHKEY_ORIGIN: 'https://example.com/login' },
      { LATCHKEY_RP_ID: 'https://example.com' },
    ];
    for (const env of bad) expect(() => settingsOf(env), JSON.stringify(env)).toThrow(ConfigError);
    expect(passkeySettings(settingsOf({ LATCHKEY_ORIGIN: 'http://localhost:3000' }))).toEqual({
      rpId: 'localhost',
      origins: ['http://localhost:3000'],
    });
  });
});
