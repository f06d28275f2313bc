import { beforeEach, describe, expect, it } from 'vitest';
import {
  CHALLENGE_MS,
  ConfigError,
  Latchkey,
  MemoryStore,
  type PasskeyOptions,
  type Passkeys,
  type SessionEvent,
} from '../../src/index.js';
import { FakeClock } from '../helpers/clock.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';

const ORIGIN = 'https://login.example.com';
const KEY = 'a passkey test key of at least thirty-two characters';
const PASSWORD = 'correct horse battery';

function latchkeyWith(
  store: MemoryStore,
  clock: FakeClock,
  passkeys: PasskeyOptions = { rpId: 'example.com', origins: [ORIGIN] },
  events: SessionEvent[] = [],
): Latchkey {
  return new Latchkey({
    store,
    users: store,
    throttle: { store },
    secondFactor: { store, secretKey: KEY, passkeys },
    clock: clock.now,
    onEvent: (event) => events.push(event),
  });
}

/** The value a `Set-Cookie` line sets, as the browser's next `Cookie` header. */
function cookieOf(setCookie: string): string {
  return setCookie.split(';')[0] as string;
}

describe('passkey options', () => {
  const store = new MemoryStore();
  const clock = new FakeClock();
  it.each([
    [{ rpId: 'https://example.com', origins: [ORIGIN] }, /rpId/],
    [{ rpId: 'example.com', origins: [] }, /at least one origin/],
    [{ rpId: 'example.com', origins: ['https://example.org'] }, /not on the rpId/],
    [{ rpId: 'example.com', origins: ['http://example.com'] }, /https only/],
    [{ rpId: 'example.com', origins: ['https://example.com/login'] }, /not an origin/],
    [{ rpId: 'localhost', origins: ['http://localhost:3000'] }, null],
  ])('%j', (options, error) => {
    const build = () => latchkeyWith(store, clock, options as PasskeyOptions);
    if (error === null) expect(build).not.toThrow();
    else expect(build).toThrow(ConfigError);
    if (error !== null) expect(build).toThrow(error);
  });
});

describe('passkeys', () => {
  let store: MemoryStore;
  let clock: FakeClock;
  let events: SessionEvent[];
  let latchkey: Latchkey;
  let passkeys: Passkeys;
  let authenticator: SoftAuthenticator;
  let userId: string;

  beforeEach(async () => {
    store = new MemoryStore();
    clock = new FakeClock(Date.now());
    events = [];
    latchkey = latchkeyWith(store, clock, undefined, events);
    passkeys = latchkey.passkeys as Passkeys;
    authenticator = new SoftAuthenticator('example.com', ORIGIN);
    userId = (await latchkey.createUser('ada', PASSWORD)).id;
  });

  async function register(): Promise<void> {
    const begun = await passkeys.beginRegistration(userId, 'ada');
    const response = authenticator.create(begun.options);
    const cookie = cookieOf(begun.setCookie);
    const added = await passkeys.finishRegistration(userId, response, cookie, 'Laptop');
    expect(added.ok).toBe(true);
  }

  /** An assertion and the cookie its challenge came in. */
  async function assertion(forUser: string | null): Promise<{ response: unknown; cookie: string }> {
    const begun = await passkeys.beginAuthentication(forUser);
    return { response: authenticator.get(begun.options), cookie: cookieOf(begun.setCookie) };
  }

  it('registers a passkey named as asked, listed as a second factor', async () => {
    await register();
    const status = await latchkey.secondFactors?.status(userId);
    expect(status?.enabled).toBe(true);
    expect(status?.passkeys.map((passkey) => passkey.name)).toEqual(['Laptop']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'second_factor_added' }));
  });

  it('uses a registration challenge once', async () => {
    const begun = await passkeys.beginRegistration(userId, 'ada');
    const cookie = cookieOf(begun.setCookie);
    const first = authenticator.create(begun.options);
    expect((await passkeys.finishRegistration(userId, first, cookie, 'A')).ok).toBe(true);
    // Another authenticator's answer to the same challenge: a new credential, still refused.
    const second = new SoftAuthenticator('example.com', ORIGIN).create(begun.options);
    expect((await passkeys.finishRegistration(userId, second, cookie, 'B')).ok).toBe(false);
    expect((await latchkey.secondFactors?.status(userId))?.passkeys).toHaveLength(1);
  });

  it('a logout mid-ceremony clears the challenge cookie', async () => {
    const signedIn = await latchkey.startSession(userId, { user: { name: 'ada' } });
    const begun = await passkeys.beginRegistration(userId, 'ada');
    const jar = `${cookieOf(signedIn.setCookie[0] as string)}; ${cookieOf(begun.setCookie)}`;
    const ended = await latchkey.endSession(jar);
    expect(ended.session?.userId).toBe(userId);
    expect(ended.setCookie).toHaveLength(2);
    expect(ended.setCookie[0]).toMatch(/^__Host-session=;.*Max-Age=0/);
    expect(ended.setCookie[1]).toMatch(
      /^__Host-latchkey-webauthn=; Max-Age=0; Path=\/; Expires=[^;]+ 1970 [^;]+; HttpOnly; Secure; SameSite=Strict$/,
    );
  });
  it('accepts an assertion as a second factor, device-bound as hwk', async () => {
    await register();
    const { response, cookie } = await assertion(userId);
    expect(await passkeys.verify(response, cookie, userId)).toEqual({
      ok: true,
      userId,
      amr: ['hwk'],
    });
  });

  it('calls a synced passkey swk', async () => {
    authenticator.synced = true;
    await register();
    const { response, cookie } = await assertion(userId);
    expect(await passkeys.verify(response, cookie, userId)).toMatchObject({ amr: ['swk'] });
  });

  it('refuses a replayed assertion: the challenge is used once, even by another process', async () => {
    // No counter to catch the replay (a synced passkey's is 0): the challenge alone must.
    authenticator.counter = 0;
    await register();
    const { response, cookie } = await assertion(userId);
    // Another server sharing the store: the challenge's use is recorded there.
    const other = latchkeyWith(store, clock).passkeys as Passkeys;
    expect((await other.verify(response, cookie, userId)).ok).toBe(true);
    expect((await passkeys.verify(response, cookie, userId)).ok).toBe(false);
  });

  it('refuses an assertion after the challenge expired', async () => {
    await register();
    const { response, cookie } = await assertion(userId);
    clock.advance(CHALLENGE_MS);
    expect((await passkeys.verify(response, cookie, userId)).ok).toBe(false);
  });

  it('refuses an assertion without its challenge cookie, or with one for another purpose or user', async () => {
    await register();
    const begun = await passkeys.beginAuthentication(userId);
    const response = authenticator.get(begun.options);
    expect((await passkeys.verify(response, null, userId)).ok).toBe(false);
    const registration = await passkeys.beginRegistration(userId, 'ada');
    expect((await passkeys.verify(response, cookieOf(registration.setCookie), userId)).ok).toBe(
      false,
    );
    // A challenge for this account is no passwordless login's.
    expect((await passkeys.verify(response, cookieOf(begun.setCookie), null)).ok).toBe(false);
  });

  it('refuses a signature counter that goes backwards, and one repeated', async () => {
    await register();
    authenticator.counter = 5;
    let attempt = await assertion(userId);
    expect((await passkeys.verify(attempt.response, attempt.cookie, userId)).ok).toBe(true);
    authenticator.counter = 3;
    attempt = await assertion(userId);
    expect((await passkeys.verify(attempt.response, attempt.cookie, userId)).ok).toBe(false);
    authenticator.counter = 5;
    attempt = await assertion(userId);
    expect((await passkeys.verify(attempt.response, attempt.cookie, userId)).ok).toBe(false);
    authenticator.counter = 6;
    attempt = await assertion(userId);
    expect((await passkeys.verify(attempt.response, attempt.cookie, userId)).ok).toBe(true);
  });

  it('accepts a counter of 0 every time (synced passkeys keep none)', async () => {
    authenticator.counter = 0;
    await register();
    for (let i = 0; i < 2; i++) {
      const { response, cookie } = await assertion(userId);
      expect((await passkeys.verify(response, cookie, userId)).ok).toBe(true);
    }
  });

  it('signs in without a password at level 2, with user verification only', async () => {
    await register();
    let attempt = await assertion(null);
    const result = await latchkey.loginWithPasskey(attempt.response, { cookie: attempt.cookie });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.session.aal).toBe(2);
    expect(result.session.amr).toEqual(['hwk', 'mfa']);
    expect(events).toContainEqual({
      type: 'login_succeeded',
      session: result.session,
      via: 'passkey',
    });

    authenticator.userVerified = false;
    authenticator.counter = 2;
    attempt = await assertion(null);
    expect(await latchkey.loginWithPasskey(attempt.response, { cookie: attempt.cookie })).toEqual({
      ok: false,
      error: 'invalid_credentials',
    });
  });

  it('refuses a passwordless login to a disabled account', async () => {
    await register();
    await latchkey.disableUser(userId);
    const { response, cookie } = await assertion(null);
    expect((await latchkey.loginWithPasskey(response, { cookie })).ok).toBe(false);
  });

  it('completes a pending password login with a passkey', async () => {
    await register();
    const login = await latchkey.login({ username: 'ada', password: PASSWORD });
    expect(login).toMatchObject({
      ok: false,
      error: 'second_factor_required',
      methods: ['passkey'],
    });
    if (login.ok || login.error !== 'second_factor_required') return;
    const pending = cookieOf(login.setCookie[0] as string);
    const ceremony = await latchkey.pendingPasskeyOptions(pending);
    expect(ceremony).not.toBeNull();
    const response = authenticator.get(ceremony?.options as { challenge: string });
    const cookie = `${pending}; ${cookieOf(ceremony?.setCookie as string)}`;
    const done = await latchkey.completeLogin({ type: 'passkey', response }, { cookie });
    expect(done.ok).toBe(true);
    if (done.ok) expect(done.session.amr).toEqual(['pwd', 'hwk', 'mfa']);
  });
});
