import { hash } from '@node-rs/argon2';
import {
  ConfigError,
  CredentialError,
  Latchkey,
  MemoryStore,
  normalizeUsername,
  type SessionEvent,
  type UserStore,
  usernameKey,
} from 'latchkey';
import { describe, expect, it } from 'vitest';
import {
  argon2Params,
  needsRehash,
  passwordProblem,
  Semaphore,
  verifyPassword,
} from '../../src/core/credentials.js';

const PASSWORD = 'correct horse battery';

function setup() {
  const store = new MemoryStore();
  const userCalls = { findUserByKey: 0, createUser: 0 };
  const users: UserStore = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (property in userCalls) userCalls[property as keyof typeof userCalls]++;
        return value.apply(target, args);
      };
    },
  });
  const auth = new Latchkey({ store, users });
  return { auth, store, userCalls };
}

async function elapsed(task: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await task();
  return performance.now() - start;
}

describe('usernames', () => {
  it('are NFC-normalised and trimmed for display', () => {
    expect(normalizeUsername('  Zoe\u0308 ')).toBe('Zoë');
    expect(normalizeUsername('Zoë')).toBe('Zoë');
  });

  it('compare equal across NFC/NFD and case variants, including ß and SS', () => {
    const keys = ['Straße', 'STRASSE', 'strasse', 'STRAẞE', 'Stra\u00dfe'.normalize('NFD')].map(
      (name) => usernameKey(normalizeUsername(name) as string),
    );
    expect(new Set(keys)).toEqual(new Set(['strasse']));
    expect(usernameKey('ZOË')).toBe(usernameKey('zoe\u0308'.normalize('NFC')));
  });

  it('refuse empty, oversize, control characters and non-strings', () => {
    for (const bad of [
      '',
      '   ',
      'a'.repeat(65),
      'ad\u0000a',
      'ad\nmin',
      'evil\u202egnp',
      42,
      null,
    ]) {
      expect(normalizeUsername(bad)).toBeNull();
    }
    expect(normalizeUsername('🦊'.repeat(64))).toBe('🦊'.repeat(64));
    expect(normalizeUsername('x'.repeat(1_000_000))).toBeNull();
  });
});

describe('password rules', () => {
  it('accept 8 to 1024 characters, counted as code points', () => {
    expect(passwordProblem('1234567')).toBe('too_short');
    expect(passwordProblem('12345678')).toBeNull();
    expect(passwordProblem('x'.repeat(1024))).toBeNull();
    expect(passwordProblem('🔑'.repeat(1024))).toBeNull();
    expect(passwordProblem('x'.repeat(1025))).toBe('too_long');
    expect(passwordProblem('')).toBe('missing');
    expect(passwordProblem(['password'])).toBe('missing');
  });

  it('a 64+ character password works and is not truncated or case-folded', async () => {
    const { auth } = setup();
    const long = `${'Long passphrase '.repeat(8)}end`;
    await auth.createUser('ada', long);
    expect((await auth.login({ username: 'ada', password: long })).ok).toBe(true);
    expect((await auth.login({ username: 'ada', password: long.slice(0, 72) })).ok).toBe(false);
    expect((await auth.login({ username: 'ada', password: long.toUpperCase() })).ok).toBe(false);
  });

  it('a password typed in NFD matches the NFC one it was set with', async () => {
    const { auth } = setup();
    await auth.createUser('zoe', 'Motörhead rules');
    const nfd = 'Motörhead rules'.normalize('NFD');
    expect((await auth.login({ username: 'zoe', password: nfd })).ok).toBe(true);
  });
});

describe('hashing', () => {
  it('stores argon2id with m=19456, t=2, p=1 and a unique salt per password', async () => {
    const { auth, store } = setup();
    const a = await auth.createUser('ada', PASSWORD);
    const b = await auth.createUser('grace', PASSWORD);
    const hashA = (await store.findUserById(a.id))?.passwordHash as string;
    const hashB = (await store.findUserById(b.id))?.passwordHash as string;
    expect(hashA).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(argon2Params(hashA)).toEqual({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(hashA.split('$')[4]).not.toBe(hashB.split('$')[4]);
    expect(hashA).not.toBe(hashB);
    expect(JSON.stringify(a)).not.toContain('argon2');
  });

  it('a hash made with older parameters is replaced at the next successful login', async () => {
    const { auth, store } = setup();
    const weak = await hash(PASSWORD, { algorithm: 2, memoryCost: 4096, timeCost: 1 });
    expect(needsRehash(weak)).toBe(true);
    await store.createUser({
      id: 'old-user',
      username: 'old',
      usernameKey: 'old',
      passwordHash: weak,
      createdAt: 0,
      disabled: false,
    });
    expect((await auth.login({ username: 'old', password: 'wrong password' })).ok).toBe(false);
    expect((await store.findUserById('old-user'))?.passwordHash).toBe(weak);
    expect((await auth.login({ username: 'old', password: PASSWORD })).ok).toBe(true);
    const upgraded = (await store.findUserById('old-user'))?.passwordHash as string;
    expect(needsRehash(upgraded)).toBe(false);
    expect(await verifyPassword(upgraded, PASSWORD)).toBe(true);
  });

  it('a malformed stored hash is a mismatch, not an error', async () => {
    expect(await verifyPassword('not a hash', PASSWORD)).toBe(false);
    expect(argon2Params('$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA')).toBeNull();
  });

  it('the semaphore never runs more than its limit at once', async () => {
    const semaphore = new Semaphore(2);
    let running = 0;
    let peak = 0;
    const task = async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
    };
    await Promise.all(Array.from({ length: 10 }, () => semaphore.run(task)));
    expect(peak).toBe(2);
  });
});

describe('login', () => {
  it('gives a session whose user snapshot needs no lookup', async () => {
    const { auth } = setup();
    const ada = await auth.createUser('Ada', PASSWORD);
    const result = await auth.login(
      { username: ' ADA ', password: PASSWORD },
      { ip: '203.0.113.9', userAgent: 'Firefox' },
    );
    if (!result.ok) throw new Error(result.error);
    expect(result.user).toEqual({ id: ada.id, username: 'Ada' });
    expect(result.session).toMatchObject({
      userId: ada.id,
      ip: '203.0.113.9',
      userAgent: 'Firefox',
    });
    expect(result.setCookie[0]).toMatch(/^__Host-session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly/);
  });

  it('unknown user, wrong password and disabled account fail alike', async () => {
    const { auth } = setup();
    const ada = await auth.createUser('ada', PASSWORD);
    await auth.createUser('off', PASSWORD);
    await auth.disableUser((await auth.findUser('off'))?.id as string);
    const failures = await Promise.all([
      auth.login({ username: 'nobody', password: PASSWORD }),
      auth.login({ username: 'ada', password: 'wrong password' }),
      auth.login({ username: 'off', password: PASSWORD }),
      auth.login({ username: 'x'.repeat(100), password: PASSWORD }),
    ]);
    for (const failure of failures)
      expect(failure).toEqual({ ok: false, error: 'invalid_credentials' });
    expect(ada.disabled).toBe(false);
  });

  it('reports each login as an event naming the account only when it exists', async () => {
    const store = new MemoryStore();
    const events: SessionEvent[] = [];
    const auth = new Latchkey({ store, users: store, onEvent: (event) => events.push(event) });
    const ada = await auth.createUser('ada', PASSWORD);
    await auth.login({ username: 'nobody', password: PASSWORD }, { ip: '198.51.100.1' });
    await auth.login({ username: 'ada', password: 'wrong password' }, { ip: '198.51.100.1' });
    await auth.login({ username: 'ada', password: PASSWORD });
    const logins = events.filter((event) => event.type.startsWith('login_'));
    expect(logins).toMatchObject([
      { type: 'login_failed', userId: null, ip: '198.51.100.1' },
      { type: 'login_failed', userId: ada.id, ip: '198.51.100.1' },
      { type: 'login_succeeded', via: 'password', session: { userId: ada.id } },
    ]);
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
  });

  it('an unknown username costs a full password verification', async () => {
    const { auth } = setup();
    await auth.createUser('ada', PASSWORD);
    await auth.login({ username: 'warm-up', password: PASSWORD });
    const unknown = await elapsed(() => auth.login({ username: 'nobody', password: PASSWORD }));
    const wrong = await elapsed(() => auth.login({ username: 'ada', password: 'wrong pass' }));
    expect(unknown).toBeGreaterThan(wrong / 3);
    expect(unknown).toBeGreaterThan(5);
  });

  it('missing, non-string and oversize fields are invalid_request, decided without the store or hashing', async () => {
    const { auth, userCalls } = setup();
    const bad = [
      {},
      { username: 'ada' },
      { password: PASSWORD },
      { username: { $ne: null }, password: PASSWORD },
      { username: 'ada', password: ['x'] },
      { username: 'ada', password: 12345678 },
      { username: '', password: PASSWORD },
      { username: 'ada', password: '' },
      { username: 'a'.repeat(300), password: PASSWORD },
      { username: 'ada', password: 'x'.repeat(1025) },
    ];
    for (const credentials of bad) {
      expect(await auth.login(credentials)).toEqual({ ok: false, error: 'invalid_request' });
    }
    const megabyte = 'x'.repeat(1024 * 1024);
    const time = await elapsed(() => auth.login({ username: 'ada', password: megabyte }));
    expect(time).toBeLessThan(20);
    expect(userCalls.findUserByKey).toBe(0);
  });

  it('ends the session the request already carried (no fixation)', async () => {
    const { auth, store } = setup();
    await auth.createUser('ada', PASSWORD);
    const first = await auth.login({ username: 'ada', password: PASSWORD });
    if (!first.ok) throw new Error(first.error);
    const cookie = (first.setCookie[0] as string).split(';')[0] as string;
    const second = await auth.login({ username: 'ada', password: PASSWORD }, { cookie });
    if (!second.ok) throw new Error(second.error);
    expect(await store.get(first.session.id)).toBeNull();
    expect(second.session.id).not.toBe(first.session.id);
  });

  it('with verifyCredentials, the app decides and latchkey keeps the session', async () => {
    const seen: string[] = [];
    const auth = new Latchkey({
      store: new MemoryStore(),
      verifyCredentials: async (username, password) => {
        seen.push(username);
        return password === PASSWORD ? { userId: 'u-1', user: { name: 'Ada' } } : null;
      },
    });
    const ok = await auth.login({ username: ' ada@example.com ', password: PASSWORD });
    expect(ok.ok && ok.user).toEqual({ name: 'Ada' });
    expect(await auth.login({ username: 'ada@example.com', password: 'nope nope' })).toEqual({
      ok: false,
      error: 'invalid_credentials',
    });
    expect(seen).toEqual(['ada@example.com', 'ada@example.com']);
    await expect(auth.createUser('x', PASSWORD)).rejects.toThrow(ConfigError);
  });

  it('refuses both users and verifyCredentials, and needs one of them to log in', async () => {
    const store = new MemoryStore();
    expect(
      () => new Latchkey({ store, users: store, verifyCredentials: async () => null }),
    ).toThrow(ConfigError);
    await expect(
      new Latchkey({ store }).login({ username: 'ada', password: PASSWORD }),
    ).rejects.toThrow(ConfigError);
  });
});

describe('accounts', () => {
  it('sign-up refuses a taken name in another case or normal form, and bad input', async () => {
    const { auth } = setup();
    expect((await auth.signup({ username: 'Straße', password: PASSWORD })).ok).toBe(true);
    expect(await auth.signup({ username: 'STRASSE', password: PASSWORD })).toMatchObject({
      ok: false,
      error: 'username_taken',
    });
    expect(await auth.signup({ username: 'ok', password: 'short' })).toMatchObject({
      ok: false,
      error: 'invalid_password',
    });
    expect(await auth.signup({ username: 'a\u0007b', password: PASSWORD })).toMatchObject({
      ok: false,
      error: 'invalid_username',
    });
    await expect(auth.createUser('straße', PASSWORD)).rejects.toBeInstanceOf(CredentialError);
  });

  it('disabling a user ends all their sessions and blocks login', async () => {
    const { auth } = setup();
    const ada = await auth.createUser('ada', PASSWORD);
    await auth.login({ username: 'ada', password: PASSWORD });
    await auth.login({ username: 'ada', password: PASSWORD });
    expect(await auth.listSessions(ada.id)).toHaveLength(2);
    expect(await auth.disableUser(ada.id)).toBe(true);
    expect(await auth.listSessions(ada.id)).toHaveLength(0);
    expect((await auth.login({ username: 'ada', password: PASSWORD })).ok).toBe(false);
    expect(await auth.enableUser(ada.id)).toBe(true);
    expect((await auth.login({ username: 'ada', password: PASSWORD })).ok).toBe(true);
    expect(await auth.disableUser('nobody')).toBe(false);
  });

  it('changing the password ends every other session and the old password', async () => {
    const { auth } = setup();
    const ada = await auth.createUser('ada', PASSWORD);
    const a = await auth.login({ username: 'ada', password: PASSWORD });
    await auth.login({ username: 'ada', password: PASSWORD });
    if (!a.ok) throw new Error(a.error);
    expect(
      await auth.changePassword(ada.id, 'a new passphrase', { keepSession: a.session.id }),
    ).toBe(true);
    expect((await auth.listSessions(ada.id)).map((s) => s.id)).toEqual([a.session.id]);
    expect((await auth.login({ username: 'ada', password: PASSWORD })).ok).toBe(false);
    expect((await auth.login({ username: 'ada', password: 'a new passphrase' })).ok).toBe(true);
    await expect(auth.changePassword(ada.id, 'short')).rejects.toThrow(CredentialError);
  });

  it('deleting a user ends their sessions; listing never shows a hash', async () => {
    const { auth } = setup();
    const ada = await auth.createUser('ada', PASSWORD);
    await auth.createUser('grace', PASSWORD);
    await auth.login({ username: 'ada', password: PASSWORD });
    expect((await auth.listUsers()).map((u) => u.username)).toEqual(['ada', 'grace']);
    expect(JSON.stringify(await auth.listUsers())).not.toContain('$argon2');
    expect(await auth.deleteUser(ada.id)).toBe(true);
    expect(await auth.listSessions(ada.id)).toHaveLength(0);
    expect(await auth.findUser('ADA')).toBeNull();
    expect(await auth.deleteUser(ada.id)).toBe(false);
  });
});
