import {
  ConfigError,
  type ExpirySweep,
  Latchkey,
  MemoryStore,
  type SessionDataPatch,
  type SessionEvent,
  type SessionIndex,
  SessionLimitError,
  type SessionStore,
  StoreUnavailableError,
} from 'latchkey';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/clock.js';
import { countCalls } from '../helpers/counting-store.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

function setup(options: Partial<ConstructorParameters<typeof Latchkey>[0]> = {}) {
  const clock = new FakeClock();
  const events: SessionEvent[] = [];
  const { store, calls } = countCalls(new MemoryStore());
  const auth = new Latchkey({
    store,
    idleTimeout: '30m',
    absoluteTimeout: '12h',
    touchInterval: '1m',
    clock: clock.now,
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { auth, clock, events, store, calls };
}

describe('seed flow steps owned by the engine', () => {
  it('D: a login creates a session record in the store', async () => {
    const { auth, store, clock } = setup();
    const { session } = await auth.create('user-1', {
      user: { name: 'Ada' },
      ip: '203.0.113.7',
      userAgent: 'Firefox',
    });
    expect(await store.get(session.id)).toEqual({
      id: session.id,
      userId: 'user-1',
      createdAt: clock.time,
      lastSeenAt: clock.time,
      idleExpiresAt: clock.time + 30 * MINUTE,
      absoluteExpiresAt: clock.time + 12 * 60 * MINUTE,
      authenticatedAt: clock.time,
      aal: 1,
      amr: [],
      ip: '203.0.113.7',
      userAgent: 'Firefox',
      user: { name: 'Ada' },
      data: {},
    });
  });

  it('E: the token is 32 random bytes in base64url and the store keys it by its SHA-256', async () => {
    const { auth, store } = setup();
    const tokens = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { token, session } = await auth.create('user-1');
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(32);
      expect(session.id).not.toBe(token);
      expect(await store.get(token)).toBeNull();
      tokens.add(token);
    }
    expect(tokens.size).toBe(200);
  });

  it('F: the session cookie is __Host-, HttpOnly, Secure, SameSite=Strict, Path=/, with no Domain or Max-Age', async () => {
    const { auth } = setup();
    const { setCookie } = await auth.startSession('user-1');
    expect(setCookie).toHaveLength(1);
    const cookie = setCookie[0] as string;
    expect(cookie).toMatch(/^__Host-session=[A-Za-z0-9_-]{43}; /);
    const attributes = cookie.split('; ').slice(1).sort();
    expect(attributes).toEqual(['HttpOnly', 'Path=/', 'SameSite=Strict', 'Secure']);
  });

  it('I: a token the store does not know is "not found"', async () => {
    const { auth } = setup();
    const planted = Buffer.alloc(32, 7).toString('base64url');
    expect(await auth.validate(planted)).toEqual({ session: null, reason: 'not_found' });
  });

  it('K: a session past its idle deadline is expired', async () => {
    const { auth, clock } = setup();
    const { token } = await auth.create('user-1');
    clock.advance(30 * MINUTE);
    expect(await auth.validate(token)).toEqual({ session: null, reason: 'expired' });
  });

  it('L: an expired record found on lookup is deleted', async () => {
    const { auth, clock, store, events } = setup();
    const { token, session } = await auth.create('user-1');
    clock.advance(31 * MINUTE);
    await auth.validate(token);
    expect(await store.get(session.id)).toBeNull();
    expect(events.at(-1)).toEqual({ type: 'expired', session });
  });

  it('M: a valid session loads the user snapshot from the record', async () => {
    const { auth } = setup();
    const { setCookie } = await auth.startSession('user-1', {
      user: { name: 'Ada', role: 'admin' },
    });
    const cookie = (setCookie[0] as string).split(';')[0] as string;
    const result = await auth.authenticate({
      method: 'GET',
      url: '/dashboard',
      cookie,
      accept: 'text/html',
      secFetchMode: 'navigate',
    });
    expect(result.ok).toBe(true);
    expect(result.ok && result.user).toEqual({ name: 'Ada', role: 'admin' });
  });

  it('P: logout deletes the session record', async () => {
    const { auth, store, events } = setup();
    const { token, session } = await auth.create('user-1');
    expect(await auth.logout(token)).toEqual(session);
    expect(await store.get(session.id)).toBeNull();
    expect(await auth.validate(token)).toEqual({ session: null, reason: 'not_found' });
    expect(events.at(-1)).toEqual({ type: 'logout', session });
    expect(await auth.logout(token)).toBeNull();
  });

  it('Q: logout clears the session cookie', async () => {
    const { auth } = setup();
    const { setCookie } = await auth.startSession('user-1');
    const cookie = (setCookie[0] as string).split(';')[0] as string;
    const ended = await auth.endSession(cookie);
    expect(ended.session?.userId).toBe('user-1');
    expect(ended.setCookie).toEqual([
      '__Host-session=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict',
    ]);
  });
});

describe('expiry and sliding refresh (fake clock)', () => {
  it('idle expiry falls exactly idleTimeout after the last recorded activity', async () => {
    const { auth, clock } = setup({ touchInterval: 0 });
    const { token } = await auth.create('user-1');
    clock.advance(10 * MINUTE);
    expect((await auth.validate(token)).session).not.toBeNull(); // activity at t=10m
    clock.advance(30 * MINUTE - 1);
    expect((await auth.validate(token)).session).not.toBeNull(); // activity at t=40m-1ms
    clock.advance(30 * MINUTE - 1);
    expect((await auth.validate(token)).reason).toBeNull(); // 1 ms before the deadline
    clock.advance(30 * MINUTE);
    expect((await auth.validate(token)).reason).toBe('expired'); // exactly at the deadline
  });

  it('an active user stays in whatever touchInterval says', async () => {
    const { auth, clock } = setup({ idleTimeout: '10m', touchInterval: '1h' });
    expect(auth.touchInterval).toBe(5 * MINUTE);
    const { token } = await auth.create('user-1');
    for (let elapsed = 0; elapsed < 11 * 60 * MINUTE; elapsed += 5 * MINUTE) {
      clock.advance(5 * MINUTE);
      expect((await auth.validate(token)).reason).toBeNull();
    }
  });

  it('the absolute expiry ends a session despite constant activity', async () => {
    const { auth, clock, store } = setup({ idleTimeout: '10m', absoluteTimeout: '1h' });
    const { token, session } = await auth.create('user-1');
    for (let elapsed = MINUTE; elapsed < 60 * MINUTE; elapsed += MINUTE) {
      clock.advance(MINUTE);
      const result = await auth.validate(token);
      expect(result.reason).toBeNull();
      expect(result.session?.absoluteExpiresAt).toBe(session.absoluteExpiresAt);
      expect(result.session?.createdAt).toBe(session.createdAt);
      expect(result.session?.idleExpiresAt).toBeLessThanOrEqual(session.absoluteExpiresAt);
    }
    clock.advance(MINUTE);
    expect(await auth.validate(token)).toEqual({ session: null, reason: 'expired' });
    expect(await store.get(session.id)).toBeNull();
  });

  it('1,000 validations within one touch interval cost 1,000 reads and exactly one write', async () => {
    const { auth, clock, calls, events } = setup({ touchInterval: '1m' });
    const { token } = await auth.create('user-1');
    clock.advance(MINUTE); // the first validation now owes a refresh
    for (let i = 0; i < 1000; i++) {
      expect((await auth.validate(token)).reason).toBeNull();
      clock.advance(50); // 1,000 × 50 ms = 50 s, inside one interval
    }
    expect(calls.get).toBe(1000);
    expect(calls.touch).toBe(1);
    expect(calls.create + calls.delete).toBe(1);
    expect(events.filter((e) => e.type === 'refreshed')).toHaveLength(1);
  });

  it('a refresh slides the idle deadline from the refresh time', async () => {
    const { auth, clock, store } = setup();
    const { token, session } = await auth.create('user-1');
    clock.advance(2 * MINUTE);
    const refreshed = await auth.validate(token);
    expect(refreshed.session?.idleExpiresAt).toBe(clock.time + 30 * MINUTE);
    expect((await store.get(session.id))?.lastSeenAt).toBe(clock.time);
  });
});

describe('revocation', () => {
  it('revoke(id) ends one session immediately and reports it', async () => {
    const { auth, events } = setup();
    const a = await auth.create('user-1');
    const b = await auth.create('user-1');
    expect((await auth.revoke(a.session.id))?.id).toBe(a.session.id);
    expect((await auth.validate(a.token)).reason).toBe('not_found');
    expect((await auth.validate(b.token)).reason).toBeNull();
    expect(events).toContainEqual({
      type: 'revoked',
      userId: 'user-1',
      sessionId: a.session.id,
      count: 1,
    });
    expect(await auth.revoke(a.session.id)).toBeNull();
  });

  it('revokeAllForUser ends every session but the one excepted, and no other user’s', async () => {
    const { auth } = setup();
    const keep = await auth.create('user-1');
    const drop = await auth.create('user-1');
    const other = await auth.create('user-2');
    expect(await auth.revokeAllForUser('user-1', { except: keep.session.id })).toBe(1);
    expect((await auth.validate(drop.token)).reason).toBe('not_found');
    expect((await auth.validate(keep.token)).reason).toBeNull();
    expect((await auth.validate(other.token)).reason).toBeNull();
    expect(await auth.revokeAllForUser('user-1')).toBe(1);
  });

  it('listSessions gives the live sessions of one user, oldest first', async () => {
    const { auth, clock } = setup();
    const first = await auth.create('user-1');
    clock.advance(1);
    const second = await auth.create('user-1');
    await auth.create('user-2');
    const listed = await auth.listSessions('user-1');
    expect(listed.map((s) => s.id)).toEqual([first.session.id, second.session.id]);
  });

  it('rotate issues a new token for the same owner and kills the old one', async () => {
    const { auth, clock, events } = setup();
    const original = await auth.create('user-1', { user: { name: 'Ada' } });
    clock.advance(5 * MINUTE);
    const rotated = await auth.rotate(original.session, { authenticatedAt: clock.time });
    if (!rotated) throw new Error('expected a rotation');
    expect(rotated.token).not.toBe(original.token);
    expect(rotated.session.userId).toBe('user-1');
    expect(rotated.session.createdAt).toBe(original.session.createdAt);
    expect(rotated.session.absoluteExpiresAt).toBe(original.session.absoluteExpiresAt);
    expect(rotated.session.authenticatedAt).toBe(clock.time);
    expect((await auth.validate(original.token)).reason).toBe('not_found');
    expect((await auth.validate(rotated.token)).session?.user).toEqual({ name: 'Ada' });
    expect(events).toContainEqual({
      type: 'rotated',
      session: rotated.session,
      previousId: original.session.id,
    });
  });

  it('deleteExpired sweeps dead sessions and keeps live ones', async () => {
    const { auth, clock } = setup();
    await auth.create('user-1');
    clock.advance(20 * MINUTE);
    const live = await auth.create('user-1');
    clock.advance(15 * MINUTE);
    expect(await auth.deleteExpired()).toBe(1);
    expect((await auth.validate(live.token)).reason).toBeNull();
  });
});

describe('session limits', () => {
  it('evict-oldest ends the oldest session and emits evicted', async () => {
    const { auth, clock, events } = setup({ maxSessionsPerUser: 2 });
    const first = await auth.create('user-1');
    clock.advance(1);
    const second = await auth.create('user-1');
    clock.advance(1);
    const third = await auth.create('user-1');
    expect((await auth.validate(first.token)).reason).toBe('not_found');
    expect((await auth.validate(second.token)).reason).toBeNull();
    expect((await auth.validate(third.token)).reason).toBeNull();
    expect(events).toContainEqual({
      type: 'evicted',
      sessionId: first.session.id,
      userId: 'user-1',
    });
  });

  it('reject refuses a session beyond the limit with SessionLimitError', async () => {
    const { auth } = setup({ maxSessionsPerUser: 1, onSessionLimit: 'reject' });
    const first = await auth.create('user-1');
    await expect(auth.create('user-1')).rejects.toBeInstanceOf(SessionLimitError);
    expect((await auth.validate(first.token)).reason).toBeNull();
    expect((await auth.create('user-2')).session.userId).toBe('user-2');
  });
});

describe('bad input', () => {
  it.each([
    ['empty', ''],
    ['too short', 'abc'],
    ['not base64url', `${'a'.repeat(42)}+`],
    ['too long', 'a'.repeat(44)],
    ['unicode', 'é'.repeat(43)],
  ])('a %s token is malformed and never reaches the store', async (_name, token) => {
    const { auth, calls } = setup();
    expect(await auth.validate(token)).toEqual({ session: null, reason: 'malformed' });
    expect(await auth.logout(token)).toBeNull();
    expect(calls.get).toBe(0);
  });

  it('refuses empty or oversize user ids and non-object snapshots', async () => {
    const { auth, calls } = setup();
    await expect(auth.create('')).rejects.toThrow(/userId/);
    await expect(auth.create('x'.repeat(1025))).rejects.toThrow(/userId/);
    await expect(auth.create('u', { user: [] as never })).rejects.toThrow(/user: must be/);
    await expect(auth.create('u', { data: { big: 'x'.repeat(9000) } })).rejects.toThrow(
      /data: must/,
    );
    expect(calls.create).toBe(0);
  });

  it('clips an oversize user agent and drops empty metadata', async () => {
    const { auth } = setup();
    const { session } = await auth.create('u', { userAgent: 'A'.repeat(5000), ip: '' });
    expect(session.userAgent).toHaveLength(512);
    expect(session.ip).toBeNull();
  });
});

describe('options', () => {
  const store = new MemoryStore();
  it.each([
    [{ idleTimeout: '13h' }, /idleTimeout .* must not exceed absoluteTimeout/],
    [{ idleTimeout: 'soon' }, /idleTimeout: "soon" is not a duration/],
    [{ idleTimeout: 500 }, /idleTimeout: must be at least 1s/],
    [{ absoluteTimeout: -5 }, /absoluteTimeout: must be a finite, non-negative duration/],
    [{ touchInterval: {} }, /touchInterval: expected a duration/],
    [{ maxSessionsPerUser: 0 }, /maxSessionsPerUser: must be a whole number >= 1/],
    [{ maxSessionsPerUser: 1.5 }, /maxSessionsPerUser/],
    [{ onSessionLimit: 'drop' }, /onSessionLimit: must be "evict-oldest" or "reject"/],
    [{ cookieName: 'bad name;' }, /cookie name "bad name;" is not a valid cookie name/],
    [{ store: undefined }, /store: a SessionStore is required/],
  ])('%o is refused with a clear message', (options, message) => {
    expect(() => new Latchkey({ store, ...(options as object) })).toThrow(ConfigError);
    expect(() => new Latchkey({ store, ...(options as object) })).toThrow(message);
  });

  it('accepts durations as milliseconds or strings', () => {
    const auth = new Latchkey({
      store,
      idleTimeout: 90_000,
      absoluteTimeout: '2h',
      touchInterval: '30s',
    });
    expect([auth.idleTimeout, auth.absoluteTimeout, auth.touchInterval]).toEqual([
      90_000, 7_200_000, 30_000,
    ]);
    expect(new Latchkey({ store, idleTimeout: '1.5s', absoluteTimeout: '1d' }).idleTimeout).toBe(
      1500,
    );
  });
});

describe('store failures', () => {
  const broken: SessionStore & SessionIndex & SessionDataPatch & ExpirySweep = {
    create: () => Promise.reject(new Error('ECONNREFUSED')),
    createCapped: () => Promise.reject(new Error('ECONNREFUSED')),
    get: () => Promise.reject(new Error('ECONNREFUSED')),
    touch: () => Promise.reject(new Error('ECONNREFUSED')),
    updateData: () => Promise.reject(new Error('ECONNREFUSED')),
    delete: () => Promise.reject(new Error('ECONNREFUSED')),
    listByUser: () => Promise.reject(new Error('ECONNREFUSED')),
    deleteByUser: () => Promise.reject(new Error('ECONNREFUSED')),
    deleteExpired: () => Promise.reject(new Error('ECONNREFUSED')),
    close: () => Promise.resolve(),
  };

  it('surface as StoreUnavailableError, never as "no session" or "valid"', async () => {
    const auth = new Latchkey({ store: broken });
    const token = Buffer.alloc(32, 1).toString('base64url');
    await expect(auth.validate(token)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(auth.validate(token)).rejects.toThrow(/session store unavailable: ECONNREFUSED/);
    await expect(auth.create('u')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(auth.logout(token)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(auth.revoke('id')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(auth.revokeAllForUser('u')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(auth.listSessions('u')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(auth.deleteExpired()).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('a throwing event listener never breaks a request', async () => {
    const auth = new Latchkey({
      store: new MemoryStore(),
      onEvent: () => {
        throw new Error('audit sink down');
      },
    });
    const { token } = await auth.create('user-1');
    expect((await auth.validate(token)).reason).toBeNull();
  });
});

describe('session placement (a store whose servers can be down one at a time)', () => {
  /** A memory store that accepts only ids starting with one of half the base64url letters, as if the other half's server were down. */
  function halfDown() {
    const memory = new MemoryStore();
    const accepts = (id: string) => /^[A-Za-f]/.test(id);
    let asked = 0;
    const store = Object.assign(memory, {
      acceptsSessionId(id: string) {
        asked++;
        return accepts(id);
      },
    });
    return { store, accepts, asked: () => asked };
  }

  it('create and rotate draw tokens until the store accepts the id', async () => {
    const { store, accepts, asked } = halfDown();
    const auth = new Latchkey({ store });
    for (let i = 0; i < 50; i++) {
      const { session, token } = await auth.create(`user-${i}`);
      expect(accepts(session.id)).toBe(true);
      expect((await auth.validate(token)).session?.id).toBe(session.id);
      const rotated = await auth.rotate(session);
      if (!rotated) throw new Error('the session was live, so rotate gives a new one');
      expect(accepts(rotated.session.id)).toBe(true);
    }
    // About two draws per session (100 of them): the refused half was drawn again, never stored.
    expect(asked()).toBeGreaterThan(120);
    expect(asked()).toBeLessThan(320);
  });

  it('a store that refuses every id still gets a create (which then fails as its outage would)', async () => {
    const memory = new MemoryStore();
    const store = Object.assign(memory, { acceptsSessionId: () => false });
    const auth = new Latchkey({ store });
    const { session } = await auth.create('user-1');
    expect(await store.get(session.id)).not.toBeNull();
  });
});
