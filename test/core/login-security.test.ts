import { type Authentication, Latchkey, MemoryStore, type SessionEvent } from 'latchkey';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/clock.js';

const PASSWORD = 'correct horse battery';
const MINUTE = 60_000;

async function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const events: SessionEvent[] = [];
  const auth = new Latchkey({
    store,
    users: store,
    throttle: { store },
    remember: { store },
    clock: clock.now,
    onEvent: (event) => events.push(event),
  });
  const user = await auth.createUser('ada', PASSWORD);
  return { clock, store, auth, events, user };
}

/** The request a browser makes with these `Set-Cookie` values stored. */
function requestWith(setCookie: readonly string[]) {
  const cookie = setCookie.map((line) => line.split(';')[0]).join('; ');
  return {
    method: 'GET',
    url: '/dashboard',
    cookie,
    accept: 'application/json',
    secFetchMode: null,
  };
}

function cookieNamed(setCookie: readonly string[], name: string): string {
  const line = setCookie.find((candidate) => candidate.startsWith(`${name}=`));
  if (!line) throw new Error(`no ${name} cookie in ${setCookie.join(' | ')}`);
  return line;
}

function signedIn(result: Authentication): asserts result is Authentication & { ok: true } {
  if (!result.ok) throw new Error(`expected a session, got ${result.reason}`);
}

describe('login throttling in the core', () => {
  it('refuses attempt 6 on one account with a Retry-After, even with the right password', async () => {
    const { auth, events } = await setup();
    for (let i = 0; i < 5; i++) {
      const result = await auth.login({ username: 'ada', password: 'wrong password' });
      expect(result).toEqual({ ok: false, error: 'invalid_credentials' });
    }
    const throttled = await auth.login({ username: 'ADA', password: PASSWORD });
    expect(throttled).toEqual({ ok: false, error: 'too_many_attempts', retryAfterSeconds: 1 });
    expect(events.at(-1)).toMatchObject({ type: 'login_throttled', retryAfterSeconds: 1 });
  });

  it('delays grow, end by themselves, and a success clears the count', async () => {
    const { auth, clock } = await setup();
    for (let i = 0; i < 5; i++) await auth.login({ username: 'ada', password: 'wrong password' });
    clock.advance(1000);
    expect((await auth.login({ username: 'ada', password: 'wrong password' })).ok).toBe(false);
    const second = await auth.login({ username: 'ada', password: PASSWORD });
    expect(second).toMatchObject({ error: 'too_many_attempts', retryAfterSeconds: 2 });
    clock.advance(2000);
    expect((await auth.login({ username: 'ada', password: PASSWORD })).ok).toBe(true);
    for (let i = 0; i < 5; i++) {
      const again = await auth.login({ username: 'ada', password: 'wrong password' });
      expect(again).toMatchObject({ error: 'invalid_credentials' });
    }
  });
});

describe('remember-me in the core', () => {
  it('a login with remember: true sets a 30-day token; without it, none', async () => {
    const { auth } = await setup();
    const plain = await auth.login({ username: 'ada', password: PASSWORD, remember: 'yes' });
    expect(plain.ok && plain.setCookie).toHaveLength(1);
    const remembered = await auth.login({ username: 'ada', password: PASSWORD, remember: true });
    if (!remembered.ok) throw new Error('login failed');
    expect(cookieNamed(remembered.setCookie, '__Host-remember')).toMatch(/Max-Age=2592000/);
  });

  it('restores a session from the token alone, rotates the token, and never counts as a recent login', async () => {
    const { auth, clock, events } = await setup();
    const login = await auth.login({ username: 'ada', password: PASSWORD, remember: true });
    if (!login.ok) throw new Error('login failed');
    const remember = cookieNamed(login.setCookie, '__Host-remember');
    // The session is gone (revoked by its id), so only the remember-me cookie can sign in.
    expect((await auth.revoke(login.session.id))?.id).toBe(login.session.id);
    clock.advance(20 * MINUTE);

    const restored = await auth.authenticate(requestWith([remember]));
    signedIn(restored);
    expect(restored.session.id).not.toBe(login.session.id);
    expect(restored.session.authenticatedAt).toBe(login.session.authenticatedAt);
    expect(cookieNamed(restored.setCookie, '__Host-session')).toMatch(/^__Host-session=[\w-]{43};/);
    expect(cookieNamed(restored.setCookie, '__Host-remember')).not.toBe(remember);
    expect(events.at(-1)).toMatchObject({ type: 'login_succeeded', via: 'remember' });
    const reauth = await auth.reauthenticate(restored.session, undefined);
    expect(reauth).toEqual({ ok: false, error: 'reauthentication_required' });
  });

  it('a rotated token replayed after the grace window is theft: everything of the user ends', async () => {
    const { auth, clock, events, store } = await setup();
    const login = await auth.login({ username: 'ada', password: PASSWORD, remember: true });
    if (!login.ok) throw new Error('login failed');
    const remember = cookieNamed(login.setCookie, '__Host-remember');
    const first = await auth.authenticate(requestWith([remember]));
    const withinGrace = await auth.authenticate(requestWith([remember]));
    signedIn(first);
    signedIn(withinGrace);
    expect(cookieNamed(withinGrace.setCookie, '__Host-remember')).toBe(
      cookieNamed(first.setCookie, '__Host-remember'),
    );

    clock.advance(10_001);
    const replay = await auth.authenticate(requestWith([remember]));
    expect(replay.ok).toBe(false);
    expect(cookieNamed(replay.setCookie, '__Host-remember')).toMatch(/Max-Age=0/);
    expect(events.some((event) => event.type === 'theft_detected')).toBe(true);
    expect(await auth.listSessions(login.session.userId)).toEqual([]);
    const successor = cookieNamed(first.setCookie, '__Host-remember');
    expect((await auth.authenticate(requestWith([successor]))).ok).toBe(false);
    expect(await store.deleteRememberByUser(login.session.userId)).toBe(0);
  });

  it('logout forgets this device’s token; a password change or disable forgets all', async () => {
    const { auth, user } = await setup();
    const tokens = async (password = PASSWORD) => {
      const login = await auth.login({ username: 'ada', password, remember: true });
      if (!login.ok) throw new Error('login failed');
      return login.setCookie;
    };
    const device = await tokens();
    const ended = await auth.endSession(requestWith(device).cookie);
    expect(cookieNamed(ended.setCookie, '__Host-remember')).toMatch(/Max-Age=0/);
    expect(
      (await auth.authenticate(requestWith([cookieNamed(device, '__Host-remember')]))).ok,
    ).toBe(false);

    const other = await tokens();
    await auth.changePassword(user.id, 'a different passphrase', { signOutOthers: false });
    expect((await auth.authenticate(requestWith([cookieNamed(other, '__Host-remember')]))).ok).toBe(
      false,
    );

    const third = await tokens('a different passphrase');
    await auth.disableUser(user.id);
    expect((await auth.authenticate(requestWith([cookieNamed(third, '__Host-remember')]))).ok).toBe(
      false,
    );
  });

  it('refuses a 31-day lifetime and a cookie name equal to the session cookie', () => {
    const store = new MemoryStore();
    expect(() => new Latchkey({ store, remember: { store, maxAge: '31d' } })).toThrow(
      /remember.maxAge: at most 30d/,
    );
    expect(
      () => new Latchkey({ store, remember: { store, cookieName: '__Host-session' } }),
    ).toThrow(/must differ/);
  });
});

describe('re-authentication', () => {
  it('passes within the window, then needs the password, which renews the session id', async () => {
    const { auth, clock } = await setup();
    const login = await auth.login({ username: 'ada', password: PASSWORD });
    if (!login.ok) throw new Error('login failed');
    expect(await auth.reauthenticate(login.session, undefined)).toMatchObject({
      ok: true,
      session: { id: login.session.id },
      setCookie: [],
    });
    clock.advance(10 * MINUTE + 1);
    expect(await auth.reauthenticate(login.session, 'wrong password')).toEqual({
      ok: false,
      error: 'reauthentication_required',
    });
    const confirmed = await auth.reauthenticate(login.session, PASSWORD);
    if (!confirmed.ok) throw new Error('expected confirmation');
    expect(confirmed.session.id).not.toBe(login.session.id);
    expect(confirmed.session.authenticatedAt).toBe(clock.now());
    expect(confirmed.setCookie).toHaveLength(1);
    expect((await auth.validate(login.setCookie[0]?.split(/[=;]/)[1] ?? '')).session).toBeNull();
  });

  it('password guesses count against the account limit', async () => {
    const { auth, clock } = await setup();
    const login = await auth.login({ username: 'ada', password: PASSWORD });
    if (!login.ok) throw new Error('login failed');
    clock.advance(11 * MINUTE);
    for (let i = 0; i < 5; i++) await auth.reauthenticate(login.session, 'wrong password');
    expect(await auth.reauthenticate(login.session, PASSWORD)).toMatchObject({
      error: 'too_many_attempts',
    });
  });
});

describe('isRecentLogin and logoutEverywhere', () => {
  it('isRecentLogin is true through reauthWindow after a password login, false one ms later', async () => {
    const { auth, clock } = await setup();
    const login = await auth.login({ username: 'ada', password: PASSWORD });
    if (!login.ok) throw new Error('login failed');
    expect(auth.isRecentLogin(login.session)).toBe(true);
    clock.advance(10 * MINUTE);
    expect(auth.isRecentLogin(login.session)).toBe(true);
    clock.advance(1);
    expect(auth.isRecentLogin(login.session)).toBe(false);
  });

  it('isRecentLogin is false for a session restored from remember-me, even a second later', async () => {
    const { auth, clock } = await setup();
    const login = await auth.login({ username: 'ada', password: PASSWORD, remember: true });
    if (!login.ok) throw new Error('login failed');
    await auth.revoke(login.session.id);
    clock.advance(1000);
    const restored = await auth.authenticate(
      requestWith([cookieNamed(login.setCookie, '__Host-remember')]),
    );
    signedIn(restored);
    expect(restored.session.authenticatedAt).toBe(login.session.authenticatedAt);
    expect(auth.isRecentLogin(restored.session)).toBe(false);
  });

  it('logoutEverywhere ends every session and remember-me token of the user, and no one else’s', async () => {
    const { auth, clock, store, user } = await setup();
    const grace = await auth.createUser('grace', PASSWORD);
    const logins = [];
    for (let i = 0; i < 3; i++) {
      const login = await auth.login({ username: 'ada', password: PASSWORD, remember: true });
      if (!login.ok) throw new Error('login failed');
      logins.push(login);
      clock.advance(MINUTE);
    }
    const other = await auth.login({ username: 'grace', password: PASSWORD, remember: true });
    if (!other.ok) throw new Error('login failed');
    expect(await auth.listSessions(user.id)).toHaveLength(3);

    await auth.logoutEverywhere(user.id);
    expect(await auth.listSessions(user.id)).toEqual([]);
    for (const login of logins) {
      expect((await auth.authenticate(requestWith(login.setCookie))).ok).toBe(false);
      const remember = cookieNamed(login.setCookie, '__Host-remember');
      expect((await auth.authenticate(requestWith([remember]))).ok).toBe(false);
    }
    expect(await store.deleteRememberByUser(user.id)).toBe(0);
    // Another user is untouched: session and remember-me token both still work.
    expect(await auth.listSessions(grace.id)).toHaveLength(1);
    signedIn(await auth.authenticate(requestWith(other.setCookie)));
    await auth.revoke(other.session.id);
    signedIn(
      await auth.authenticate(requestWith([cookieNamed(other.setCookie, '__Host-remember')])),
    );
  });
});

describe('new passwords', () => {
  it('refuses the most common passwords in any letter case, with their own code', async () => {
    const { auth } = await setup();
    for (const password of ['password', 'Password1', 'QWERTYUIOP', 'iloveyou']) {
      await expect(auth.createUser(`u-${password}`, password)).rejects.toMatchObject({
        code: 'weak_password',
      });
    }
    await expect(auth.createUser('fine', 'a rare enough passphrase')).resolves.toMatchObject({
      username: 'fine',
    });
  });
});

describe('an app that keeps its own users (verifyCredentials)', () => {
  function appSetup() {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const auth = new Latchkey({
      store,
      remember: { store },
      clock: clock.now,
      verifyCredentials: async (username, password) =>
        username === 'ada' && password === PASSWORD ? { userId: 'u-ada' } : null,
    });
    return { auth, clock };
  }

  it('re-authentication asks the app, by the username kept in the session', async () => {
    const { auth, clock } = appSetup();
    const login = await auth.login({ username: 'ada', password: PASSWORD });
    if (!login.ok) throw new Error('login failed');
    expect(login.user).toEqual({ id: 'u-ada', username: 'ada' });
    clock.advance(11 * MINUTE);
    expect(await auth.reauthenticate(login.session, 'wrong password')).toEqual({
      ok: false,
      error: 'reauthentication_required',
    });
    expect((await auth.reauthenticate(login.session, PASSWORD)).ok).toBe(true);
    const nameless = await auth.create('u-ada', { user: { id: 'u-ada' } });
    clock.advance(11 * MINUTE);
    expect(await auth.reauthenticate(nameless.session, PASSWORD)).toEqual({
      ok: false,
      error: 'reauthentication_required',
    });
  });

  it('a remembered login restores a session whose snapshot is the user id', async () => {
    const { auth } = appSetup();
    const login = await auth.login({ username: 'ada', password: PASSWORD, remember: true });
    if (!login.ok) throw new Error('login failed');
    const restored = await auth.authenticate(
      requestWith([cookieNamed(login.setCookie, '__Host-remember')]),
    );
    signedIn(restored);
    expect(restored.user).toEqual({ id: 'u-ada' });
  });
});
