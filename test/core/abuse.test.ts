import {
  CredentialError,
  Latchkey,
  MemoryStore,
  OverloadedError,
  type SessionEvent,
  type SignupResult,
} from 'latchkey';
import { describe, expect, it } from 'vitest';
import { NEW_PASSWORD_QUEUE } from '../../src/core/credentials.js';
import { FakeClock } from '../helpers/clock.js';

const PASSWORD = 'correct horse battery';
const SECRET = 'a device-cookie secret of at least 32 characters';

function setup(options: { deviceSecret?: string } = { deviceSecret: SECRET }) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const events: SessionEvent[] = [];
  const auth = new Latchkey({
    store,
    users: store,
    throttle: { store, ...options },
    remember: { store },
    clock: clock.now,
    siteName: 'latchkey',
    onEvent: (event) => events.push(event),
  });
  return { clock, store, auth, events };
}

/** The `Cookie` header a browser sends after storing these `Set-Cookie` values. */
function jarOf(setCookie: readonly string[]): string {
  return setCookie
    .filter((line) => !/Max-Age=0/i.test(line))
    .map((line) => line.split(';')[0])
    .join('; ');
}

describe('device cookies (OWASP): targeted lockout', () => {
  it("strangers' failures from other IPs do not lock out the owner's device, even after the owner logged out", async () => {
    const { auth } = setup();
    await auth.createUser('ada', PASSWORD);
    const first = await auth.login({ username: 'ada', password: PASSWORD }, { ip: '192.0.2.1' });
    if (!first.ok) throw new Error('login failed');
    expect(first.setCookie.some((line) => line.startsWith('__Host-device='))).toBe(true);
    const loggedOut = await auth.endSession(jarOf(first.setCookie));
    // Logout clears the session cookies only: the device cookie stays in the browser.
    expect(loggedOut.setCookie.some((line) => line.startsWith('__Host-device='))).toBe(false);
    const deviceJar = jarOf(first.setCookie)
      .split('; ')
      .filter((pair) => pair.startsWith('__Host-device='))
      .join('; ');

    for (let i = 0; i < 10; i++) {
      await auth.login({ username: 'ada', password: `guess ${i}` }, { ip: `203.0.113.${i}` });
    }
    const stranger = await auth.login(
      { username: 'ada', password: PASSWORD },
      { ip: '198.51.100.7' },
    );
    expect(stranger).toMatchObject({ ok: false, error: 'too_many_attempts' });
    const owner = await auth.login(
      { username: 'ada', password: PASSWORD },
      { ip: '192.0.2.1', cookie: deviceJar },
    );
    expect(owner.ok).toBe(true);
  });

  it("the device's own counter limits guesses made with it; a forged or other account's cookie is a stranger", async () => {
    const { auth, events } = setup();
    await auth.createUser('ada', PASSWORD);
    await auth.createUser('bob', PASSWORD);
    const bob = await auth.login({ username: 'bob', password: PASSWORD });
    if (!bob.ok) throw new Error('login failed');
    const bobDevice = jarOf(bob.setCookie.filter((line) => line.startsWith('__Host-device=')));
    const [, value = ''] = bobDevice.split('=');
    const forged = `__Host-device=${value.slice(0, -2)}AA`;
    // Five guesses on ada with bob's device cookie count as a stranger's, on ada's account.
    for (let i = 0; i < 5; i++) {
      await auth.login({ username: 'ada', password: `guess ${i}` }, { cookie: bobDevice });
    }
    expect(
      await auth.login({ username: 'ada', password: PASSWORD }, { cookie: forged }),
    ).toMatchObject({ ok: false, error: 'too_many_attempts' });
    const failed = events.filter((event) => event.type === 'login_failed');
    expect(failed.at(-1)).toMatchObject({ client: 'unknown_ip', ip: null });
    // Bob's device on bob's account: its own counter, five guesses back to back, then a wait.
    for (let i = 0; i < 5; i++) {
      await auth.login({ username: 'bob', password: `guess ${i}` }, { cookie: bobDevice });
    }
    expect(failed.length + 5).toBe(events.filter((e) => e.type === 'login_failed').length);
    expect(events.filter((e) => e.type === 'login_failed').at(-1)).toMatchObject({
      client: 'device',
    });
    expect(
      await auth.login({ username: 'bob', password: PASSWORD }, { cookie: bobDevice }),
    ).toMatchObject({ ok: false, error: 'too_many_attempts' });
    // A stranger is not held by the device's counter.
    expect(
      (await auth.login({ username: 'bob', password: PASSWORD }, { ip: '192.0.2.9' })).ok,
    ).toBe(true);
  });

  it('without a deviceSecret no device cookie is issued; a short secret is a ConfigError', async () => {
    const { auth } = setup({});
    await auth.createUser('ada', PASSWORD);
    const result = await auth.login({ username: 'ada', password: PASSWORD });
    if (!result.ok) throw new Error('login failed');
    expect(result.setCookie.some((line) => line.startsWith('__Host-device='))).toBe(false);
    const store = new MemoryStore();
    expect(() => new Latchkey({ store, throttle: { store, deviceSecret: 'short' } })).toThrow(
      /deviceSecret/,
    );
  });

  it('an attempt without a client address says so in its event: no per-IP limit applied', async () => {
    const { auth, events } = setup();
    await auth.createUser('ada', PASSWORD);
    await auth.login({ username: 'ada', password: 'not the password' });
    await auth.login({ username: 'ada', password: 'not the password' }, { ip: '192.0.2.1' });
    const failed = events.filter((event) => event.type === 'login_failed');
    expect(failed.map((event) => event.type === 'login_failed' && event.client)).toEqual([
      'unknown_ip',
      'ip',
    ]);
  });
});

describe('sign-up abuse', () => {
  it('sign-ups are throttled per IP (20 back to back, then a wait) with a Retry-After', async () => {
    const { auth } = setup();
    const results: SignupResult[] = [];
    for (let i = 0; i < 21; i++) {
      results.push(
        await auth.signup({ username: `user${i}`, password: PASSWORD }, { ip: '203.0.113.5' }),
      );
    }
    expect(results.slice(0, 20).every((result) => result.ok)).toBe(true);
    expect(results[20]).toEqual({ ok: false, error: 'too_many_attempts', retryAfterSeconds: 1 });
    // Nothing was created by the refused one; another address may sign up.
    expect(await auth.findUser('user20')).toBeNull();
    expect(
      (await auth.signup({ username: 'user20', password: PASSWORD }, { ip: '203.0.113.6' })).ok,
    ).toBe(true);
  }, 60_000);

  it('a flood of sign-ups fills the bounded hashing queue: the excess gets OverloadedError at once, and a login still gets through', async () => {
    const { auth } = setup();
    await auth.createUser('ada', PASSWORD);
    const flood = Array.from({ length: NEW_PASSWORD_QUEUE + 24 }, (_, i) =>
      auth.signup({ username: `flood${i}`, password: PASSWORD }, { ip: `10.0.0.${i}` }).then(
        () => 'created',
        (error: unknown) => error,
      ),
    );
    const login = auth.login({ username: 'ada', password: PASSWORD }, { ip: '192.0.2.1' });
    const outcomes = await Promise.all(flood);
    expect((await login).ok).toBe(true);
    // All arrive before the first estimate is back: one hashes, NEW_PASSWORD_QUEUE wait, 23 go.
    const overloaded = outcomes.filter((outcome) => outcome instanceof OverloadedError);
    expect(overloaded.length).toBe(23);
    for (const error of overloaded) expect((error as OverloadedError).retryAfterSeconds).toBe(1);
    expect(outcomes.filter((outcome) => outcome === 'created').length).toBeGreaterThan(0);
    expect(
      outcomes.every((outcome) => outcome === 'created' || outcome instanceof OverloadedError),
    ).toBe(true);
  }, 60_000);
});

describe('password strength (zxcvbn-ts)', () => {
  it('refuses password1234, <username>2024! and <site name>123 at sign-up, with the estimator feedback', async () => {
    const { auth } = setup();
    for (const [username, password] of [
      ['ada', 'password1234'],
      ['margaret', 'margaret2024!'],
      ['grace', 'latchkey123'],
    ] as const) {
      const error = await auth.createUser(username, password).catch((e: unknown) => e);
      expect(error, `${username} / ${password}`).toBeInstanceOf(CredentialError);
      expect((error as CredentialError).code).toBe('weak_password');
      expect((error as CredentialError).message).toMatch(/too easy to guess\. \S/);
      expect(await auth.findUser(username)).toBeNull();
    }
    expect((await auth.createUser('ada', PASSWORD)).username).toBe('ada');
  });

  it('refuses a weak new password at password change and keeps the old one', async () => {
    const { auth } = setup();
    const ada = await auth.createUser('ada', PASSWORD);
    await expect(auth.changePassword(ada.id, 'ada2024!')).rejects.toMatchObject({
      code: 'weak_password',
    });
    expect((await auth.login({ username: 'ada', password: PASSWORD })).ok).toBe(true);
  });

  it('a 1,024-character password is estimated on its first 32 characters, off the event loop', async () => {
    const { auth } = setup();
    const strong = `${PASSWORD} ${'aB3$'.repeat(250)}`.slice(0, 1024);
    expect((await auth.createUser('ada', strong)).username).toBe('ada');
  });
});
