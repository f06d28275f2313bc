import { Latchkey, type Latchkey as LatchkeyType, MemoryStore, type SessionEvent } from 'latchkey';
import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/clock.js';

const PASSWORD = 'correct horse battery';
const SECRET_KEY = 'k'.repeat(32);

async function setup(options: { remember?: boolean } = {}) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const events: SessionEvent[] = [];
  const auth = new Latchkey({
    store,
    users: store,
    throttle: { store },
    ...(options.remember ? { remember: { store } } : {}),
    secondFactor: { store, secretKey: SECRET_KEY, issuer: 'Acme' },
    clock: clock.now,
    onEvent: (event) => events.push(event),
  });
  const user = await auth.createUser('ada', PASSWORD);
  return { clock, store, auth, events, user };
}

function factorsOf(auth: LatchkeyType) {
  if (!auth.secondFactors) throw new Error('second factors are off');
  return auth.secondFactors;
}

/** The `Cookie` header a browser sends with these `Set-Cookie` values stored. */
function cookieOf(...setCookie: (readonly string[])[]): string {
  const jar = new Map<string, string>();
  for (const line of setCookie.flat()) {
    const [pair = ''] = line.split(';');
    const at = pair.indexOf('=');
    const name = pair.slice(0, at);
    const value = pair.slice(at + 1);
    if (value === '' || /max-age=0/i.test(line)) jar.delete(name);
    else jar.set(name, value);
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

/** A code from the user's authenticator app at the clock's time (`stepOffset` steps away). */
function codeAt(secret: string, time: number, stepOffset = 0): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secret),
    timestamp: time + stepOffset * 30_000,
  });
}

/** Enrols and confirms TOTP for `userId`; gives the base32 secret and the recovery codes. */
async function enrol(auth: LatchkeyType, clock: FakeClock, userId: string) {
  const enrolment = await factorsOf(auth).beginTotp(userId, 'ada');
  if (!enrolment) throw new Error('already enrolled');
  const confirmed = await factorsOf(auth).confirmTotp(
    userId,
    enrolment.factorId,
    codeAt(enrolment.secret, clock.now()),
  );
  if (!confirmed.ok) throw new Error(`confirm failed: ${confirmed.error}`);
  clock.advance(30_000); // the confirming step is used: the next login needs the next one
  return { secret: enrolment.secret, recoveryCodes: confirmed.recoveryCodes };
}

async function pendingLogin(auth: LatchkeyType, remember = false) {
  const result = await auth.login({ username: 'ada', password: PASSWORD, remember });
  if (result.ok || result.error !== 'second_factor_required') {
    throw new Error(`expected a pending login, got ${JSON.stringify(result)}`);
  }
  return result;
}

describe('TOTP enrolment', () => {
  it('shows a QR code and the secret, and protects nothing until a code confirms it', async () => {
    const { auth, clock, user } = await setup();
    const enrolment = await factorsOf(auth).beginTotp(user.id, 'ada');
    if (!enrolment) throw new Error('no enrolment');
    expect(enrolment.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(enrolment.uri).toContain('otpauth://totp/Acme:ada?');
    expect(enrolment.uri).toContain(`secret=${enrolment.secret}`);
    expect(enrolment.qrSvg).toMatch(/^<svg[^>]*>.*<\/svg>\s*$/s);
    // Unconfirmed: a password login still signs in at once.
    expect((await auth.login({ username: 'ada', password: PASSWORD })).ok).toBe(true);

    const wrong = await factorsOf(auth).confirmTotp(user.id, enrolment.factorId, '000000');
    expect(wrong).toEqual({ ok: false, error: 'invalid_code' });
    const right = await factorsOf(auth).confirmTotp(
      user.id,
      enrolment.factorId,
      codeAt(enrolment.secret, clock.now()),
    );
    if (!right.ok) throw new Error(right.error);
    expect(right.recoveryCodes).toHaveLength(10);
    expect(new Set(right.recoveryCodes).size).toBe(10);
    for (const code of right.recoveryCodes) expect(code).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
    expect(await factorsOf(auth).status(user.id)).toMatchObject({
      enabled: true,
      totp: { kind: 'totp', name: 'Authenticator app' },
      recoveryCodesLeft: 10,
    });
    // One authenticator per account: another enrolment waits for the first to be removed.
    expect(await factorsOf(auth).beginTotp(user.id, 'ada')).toBeNull();
  });

  it('keeps the secret sealed at rest, bound to its user and factor', async () => {
    const { auth, store, user } = await setup();
    const enrolment = await factorsOf(auth).beginTotp(user.id, 'ada');
    if (!enrolment) throw new Error('no enrolment');
    const [stored] = await store.listFactors(user.id);
    expect(stored?.secret).toMatch(/^v1\./);
    expect(stored?.secret).not.toContain(enrolment.secret);
    expect(JSON.stringify(await store.listFactors(user.id))).not.toContain(enrolment.secret);
  });

  it('an enrolment left unconfirmed for 10 minutes is void', async () => {
    const { auth, clock, user } = await setup();
    const enrolment = await factorsOf(auth).beginTotp(user.id, 'ada');
    if (!enrolment) throw new Error('no enrolment');
    clock.advance(10 * 60_000);
    const late = await factorsOf(auth).confirmTotp(
      user.id,
      enrolment.factorId,
      codeAt(enrolment.secret, clock.now()),
    );
    expect(late).toEqual({ ok: false, error: 'invalid_code' });
  });
});

describe('a login with a second factor', () => {
  it('a right password gives a pending login, not a session; the code then gives AAL2', async () => {
    const { auth, clock, user, store, events } = await setup();
    const { secret } = await enrol(auth, clock, user.id);
    const pending = await pendingLogin(auth);
    expect(pending.methods).toEqual(['totp', 'recovery']);
    expect(pending.setCookie).toHaveLength(1);
    expect(pending.setCookie[0]).toMatch(
      /^__Host-latchkey-2fa=v1\.[^;]+; Max-Age=300; Path=\/; HttpOnly; Secure; SameSite=Strict$/,
    );
    expect(await store.listByUser(user.id, clock.now())).toEqual([]);
    // The pending cookie is worth nothing as a session.
    const asSession = await auth.authenticate({
      method: 'GET',
      url: '/dashboard',
      cookie: cookieOf(pending.setCookie),
      accept: 'application/json',
      secFetchMode: null,
    });
    expect(asSession.ok).toBe(false);

    const cookie = cookieOf(pending.setCookie);
    const done = await auth.completeLogin(
      { type: 'totp', code: codeAt(secret, clock.now()) },
      {
        cookie,
      },
    );
    if (!done.ok) throw new Error(done.error);
    expect(done.session).toMatchObject({ userId: user.id, aal: 2, amr: ['pwd', 'otp', 'mfa'] });
    expect(done.setCookie.some((line) => line.startsWith('__Host-session='))).toBe(true);
    // The pending login ends with the login.
    expect(done.setCookie.some((line) => /^__Host-latchkey-2fa=;.*Max-Age=0/.test(line))).toBe(
      true,
    );
    expect(
      events.some((event) => event.type === 'login_succeeded' && event.via === 'second_factor'),
    ).toBe(true);
    const signedIn = await auth.authenticate({
      method: 'GET',
      url: '/dashboard',
      cookie: cookieOf(done.setCookie),
      accept: 'application/json',
      secFetchMode: null,
    });
    expect(signedIn.ok && signedIn.session.aal).toBe(2);
  });

  it('never accepts a used time step again, nor an earlier one', async () => {
    const { auth, clock, user } = await setup();
    const { secret } = await enrol(auth, clock, user.id);
    const code = codeAt(secret, clock.now());
    const first = await auth.completeLogin(
      { type: 'totp', code },
      { cookie: cookieOf((await pendingLogin(auth)).setCookie) },
    );
    expect(first.ok).toBe(true);
    const replay = await auth.completeLogin(
      { type: 'totp', code },
      { cookie: cookieOf((await pendingLogin(auth)).setCookie) },
    );
    expect(replay).toMatchObject({ ok: false, error: 'invalid_code' });
    // The previous step's code is still inside the ±1 window, but below the step used.
    const earlier = await auth.completeLogin(
      { type: 'totp', code: codeAt(secret, clock.now(), -1) },
      { cookie: cookieOf((await pendingLogin(auth)).setCookie) },
    );
    expect(earlier).toMatchObject({ ok: false, error: 'invalid_code' });
    clock.advance(30_000);
    const next = await auth.completeLogin(
      { type: 'totp', code: codeAt(secret, clock.now()) },
      { cookie: cookieOf((await pendingLogin(auth)).setCookie) },
    );
    expect(next.ok).toBe(true);
  });

  it('parallel uses of one code: exactly one signs in', async () => {
    const { auth, clock, user } = await setup();
    const { secret } = await enrol(auth, clock, user.id);
    const code = codeAt(secret, clock.now());
    const cookies = await Promise.all(
      [1, 2, 3, 4].map(async () => cookieOf((await pendingLogin(auth)).setCookie)),
    );
    const results = await Promise.all(
      cookies.map((cookie) => auth.completeLogin({ type: 'totp', code }, { cookie })),
    );
    expect(results.filter((result) => result.ok)).toHaveLength(1);
  });

  it('throttles wrong codes per account: 5 per 30 s, then a wait, even for the right code', async () => {
    const { auth, clock, user, events } = await setup();
    const { secret } = await enrol(auth, clock, user.id);
    const cookie = cookieOf((await pendingLogin(auth)).setCookie);
    for (let i = 0; i < 5; i++) {
      const wrong = await auth.completeLogin({ type: 'totp', code: '123456' }, { cookie });
      expect(wrong).toMatchObject({ ok: false, error: 'invalid_code' });
    }
    const throttled = await auth.completeLogin(
      { type: 'totp', code: codeAt(secret, clock.now()) },
      { cookie },
    );
    expect(throttled).toMatchObject({ ok: false, error: 'too_many_attempts' });
    expect(throttled.ok === false && 'retryAfterSeconds' in throttled).toBe(true);
    expect(events.filter((event) => event.type === 'second_factor_failed')).toHaveLength(5);
    clock.advance(30_000);
    const fresh = cookieOf((await pendingLogin(auth)).setCookie);
    const after = await auth.completeLogin(
      { type: 'totp', code: codeAt(secret, clock.now()) },
      { cookie: fresh },
    );
    expect(after.ok).toBe(true);
  });

  it('a recovery code works once, in any case and spacing, and the count goes down', async () => {
    const { auth, clock, user, events } = await setup();
    const { recoveryCodes } = await enrol(auth, clock, user.id);
    const code = recoveryCodes[3] as string;
    const typed = ` ${code.toUpperCase().replaceAll('-', ' ')} `;
    const used = await auth.completeLogin(
      { type: 'recovery', code: typed },
      { cookie: cookieOf((await pendingLogin(auth)).setCookie) },
    );
    expect(used.ok && used.session.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(events).toContainEqual({ type: 'recovery_code_used', userId: user.id, remaining: 9 });
    expect((await factorsOf(auth).status(user.id)).recoveryCodesLeft).toBe(9);
    const again = await auth.completeLogin(
      { type: 'recovery', code },
      { cookie: cookieOf((await pendingLogin(auth)).setCookie) },
    );
    expect(again).toMatchObject({ ok: false, error: 'invalid_code' });
    const regenerated = await factorsOf(auth).regenerateRecoveryCodes(user.id);
    expect(regenerated).toHaveLength(10);
    expect(regenerated).not.toContain(recoveryCodes[0]);
    const old = await auth.completeLogin(
      { type: 'recovery', code: recoveryCodes[0] },
      { cookie: cookieOf((await pendingLogin(auth)).setCookie) },
    );
    expect(old).toMatchObject({ ok: false, error: 'invalid_code' });
  });

  it('a pending login lasts 5 minutes, and a tampered or absent one is no login', async () => {
    const { auth, clock, user } = await setup();
    const { secret } = await enrol(auth, clock, user.id);
    const cookie = cookieOf((await pendingLogin(auth)).setCookie);
    expect(await auth.pendingSecondFactor(cookie)).toEqual(['totp', 'recovery']);
    // A character in the middle of the value: the last one may hold only padding bits.
    const at = cookie.indexOf('=') + Math.floor((cookie.length - cookie.indexOf('=')) / 2);
    const tampered = `${cookie.slice(0, at)}${cookie[at] === 'A' ? 'B' : 'A'}${cookie.slice(at + 1)}`;
    expect(await auth.pendingSecondFactor(tampered)).toBeNull();
    const none = await auth.completeLogin({ type: 'totp', code: codeAt(secret, clock.now()) }, {});
    expect(none).toMatchObject({ ok: false, error: 'no_pending_login' });
    clock.advance(5 * 60_000);
    expect(await auth.pendingSecondFactor(cookie)).toBeNull();
    const late = await auth.completeLogin(
      { type: 'totp', code: codeAt(secret, clock.now()) },
      { cookie },
    );
    expect(late).toMatchObject({ ok: false, error: 'no_pending_login' });
  });

  it('a logout clears a pending login the browser holds, and no other cookie it lacks', async () => {
    const { auth, clock, user } = await setup();
    await enrol(auth, clock, user.id);
    // A signed-in browser (an earlier session) in which a second login now waits for its code.
    const signedIn = await auth.startSession(user.id, { user: { name: 'ada' } });
    const pending = await pendingLogin(auth);
    const jar = cookieOf(signedIn.setCookie, pending.setCookie);
    expect(await auth.pendingSecondFactor(jar)).toEqual(['totp', 'recovery']);

    const ended = await auth.endSession(jar);
    expect(ended.session?.userId).toBe(user.id);
    const after = cookieOf(signedIn.setCookie, pending.setCookie, ended.setCookie);
    expect(after).toBe('');
    expect(await auth.pendingSecondFactor(after)).toBeNull();
    // Without one in the request, the logout sets only the session's blank.
    const plain = await auth.endSession(cookieOf(signedIn.setCookie));
    expect(plain.setCookie).toHaveLength(1);
    expect(plain.setCookie[0]).toMatch(/^__Host-session=;.*Max-Age=0/);
  });
  it('an account disabled while its login waits is not signed in', async () => {
    const { auth, clock, user, store } = await setup();
    const { secret } = await enrol(auth, clock, user.id);
    const cookie = cookieOf((await pendingLogin(auth)).setCookie);
    await auth.disableUser(user.id);
    const result = await auth.completeLogin(
      { type: 'totp', code: codeAt(secret, clock.now()) },
      { cookie },
    );
    expect(result).toMatchObject({ ok: false, error: 'invalid_credentials' });
    expect(await store.listByUser(user.id, clock.now())).toEqual([]);
  });

  it('remember-me is issued after the second factor, and restores AAL1 only', async () => {
    const { auth, clock, user } = await setup({ remember: true });
    const { secret } = await enrol(auth, clock, user.id);
    const pending = await pendingLogin(auth, true);
    expect(pending.setCookie.some((line) => line.startsWith('__Host-remember='))).toBe(false);
    const done = await auth.completeLogin(
      { type: 'totp', code: codeAt(secret, clock.now()) },
      { cookie: cookieOf(pending.setCookie) },
    );
    if (!done.ok) throw new Error(done.error);
    const remember = done.setCookie.find((line) => line.startsWith('__Host-remember='));
    expect(remember).toBeDefined();
    const restored = await auth.authenticate({
      method: 'GET',
      url: '/dashboard',
      cookie: cookieOf([remember as string]),
      accept: 'application/json',
      secFetchMode: null,
    });
    if (!restored.ok) throw new Error(restored.reason);
    expect(restored.session.aal).toBe(1);
  });
});

describe('step-up and requireAal', () => {
  it('an AAL1 session is denied where AAL2 is needed, then rotated to AAL2 by a code', async () => {
    const { auth, clock, user, events } = await setup();
    const login = await auth.login({ username: 'ada', password: PASSWORD });
    if (!login.ok) throw new Error(login.error);
    expect(login.session).toMatchObject({ aal: 1, amr: ['pwd'] });
    const api = {
      method: 'GET',
      url: '/api/me',
      cookie: null,
      accept: 'application/json',
      secFetchMode: null,
    };
    const page = { ...api, url: '/admin?tab=keys', accept: 'text/html', secFetchMode: 'navigate' };
    expect(auth.requireAal(login.session, 1, api)).toBeNull();
    expect(auth.requireAal(login.session, 2, api)).toMatchObject({
      status: 401,
      body: '{"error":"second_factor_required"}',
    });
    expect(auth.requireAal(login.session, 2, page)).toMatchObject({
      status: 303,
      headers: { location: '/login/second-factor?next=%2Fadmin%3Ftab%3Dkeys' },
    });

    const { secret } = await enrol(auth, clock, user.id);
    const wrong = await auth.stepUp(login.session, { type: 'totp', code: '000000' });
    expect(wrong).toEqual({ ok: false, error: 'invalid_code' });
    const up = await auth.stepUp(login.session, {
      type: 'totp',
      code: codeAt(secret, clock.now()),
    });
    if (!up.ok) throw new Error(up.error);
    expect(up.session.id).not.toBe(login.session.id);
    expect(up.session).toMatchObject({
      aal: 2,
      amr: ['pwd', 'otp', 'mfa'],
      authenticatedAt: clock.now(),
    });
    expect(auth.requireAal(up.session, 2, api)).toBeNull();
    expect(await auth.validate(cookieOf(login.setCookie).split('=')[1] as string)).toMatchObject({
      session: null,
    });
    expect(events.some((event) => event.type === 'stepped_up')).toBe(true);
  });

  it('removing the last factor takes the recovery codes with it', async () => {
    const { auth, clock, user } = await setup();
    await enrol(auth, clock, user.id);
    const status = await factorsOf(auth).status(user.id);
    expect(await factorsOf(auth).remove(user.id, status.totp?.id as string)).toBe(true);
    expect(await factorsOf(auth).status(user.id)).toEqual({
      enabled: false,
      totp: null,
      passkeys: [],
      recoveryCodesLeft: 0,
    });
    expect((await auth.login({ username: 'ada', password: PASSWORD })).ok).toBe(true);
  });

  it('an admin reset removes every factor and is an event', async () => {
    const { auth, clock, user, events } = await setup();
    await enrol(auth, clock, user.id);
    expect(await factorsOf(auth).reset(user.id)).toBe(11);
    expect(events).toContainEqual({
      type: 'second_factor_removed',
      userId: user.id,
      factorId: null,
      by: 'admin',
    });
    expect((await auth.login({ username: 'ada', password: PASSWORD })).ok).toBe(true);
  });
});
