import {
  ConfigError,
  Latchkey,
  MemoryStore,
  type SessionRecord,
  type SessionStore,
  Sessions,
} from 'latchkey';
import { describe, expect, it } from 'vitest';

/** The required port and nothing else, like a key-value cache would offer. */
class MapStore implements SessionStore {
  readonly records = new Map<string, SessionRecord>();
  async create(record: SessionRecord): Promise<void> {
    this.records.set(record.id, record);
  }
  async get(id: string): Promise<SessionRecord | null> {
    return this.records.get(id) ?? null;
  }
  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    const record = this.records.get(id);
    if (record) this.records.set(id, { ...record, lastSeenAt, idleExpiresAt });
  }
  async delete(id: string): Promise<boolean> {
    return this.records.delete(id);
  }
  async close(): Promise<void> {}
}

const cookieOf = (setCookie: readonly string[]) => (setCookie[0] as string).split(';')[0] as string;

describe('a store with only the required port', () => {
  it('runs the seed flow: create, validate, refresh, rotate, logout', async () => {
    let now = Date.UTC(2026, 0, 1);
    const store = new MapStore();
    const latchkey = new Latchkey({ store, touchInterval: '1m', clock: () => now });
    const { session, setCookie } = await latchkey.startSession('user-1', { user: { n: 1 } });
    const request = {
      method: 'GET',
      url: '/',
      cookie: cookieOf(setCookie),
      accept: null,
      secFetchMode: null,
    };
    expect((await latchkey.authenticate(request)).ok).toBe(true);
    now += 2 * 60_000;
    expect((await latchkey.authenticate(request)).ok).toBe(true);
    expect(store.records.get(session.id)?.lastSeenAt).toBe(now);
    const rotated = await latchkey.rotateSession(session);
    if (!rotated) throw new Error('expected a rotation');
    expect((await latchkey.authenticate(request)).ok).toBe(false);
    const ended = await latchkey.endSession(cookieOf(rotated.setCookie));
    expect(ended.session?.id).toBe(rotated.session.id);
    expect(store.records.size).toBe(0);
  });

  it('refuses maxSessionsPerUser at construction, naming the capability', () => {
    for (const build of [
      () => new Sessions({ store: new MapStore(), maxSessionsPerUser: 3 }),
      () => new Latchkey({ store: new MapStore(), maxSessionsPerUser: 3 }),
    ]) {
      expect(build).toThrow(ConfigError);
      expect(build).toThrow(
        'maxSessionsPerUser: needs a store with the "session index" capability (missing createCapped, listByUser, deleteByUser)',
      );
    }
  });

  it('methods that need a missing capability fail with a ConfigError naming it, calling nothing', async () => {
    const store = new MapStore();
    const latchkey = new Latchkey({ store });
    const { session } = await latchkey.create('user-1');
    const refusals: [Promise<unknown>, RegExp][] = [
      [latchkey.listSessions('user-1'), /^listSessions: .*"session index"/],
      [latchkey.revokeAllForUser('user-1'), /^revokeAllForUser: .*"session index"/],
      [latchkey.logoutEverywhere('user-1'), /^logoutEverywhere: .*"session index"/],
      [
        latchkey.setData(session.id, { a: 1 }),
        /^setData: .*"data patch" capability \(missing updateData\)/,
      ],
      [
        latchkey.deleteExpired(),
        /^deleteExpired: .*"expiry sweep" capability \(missing deleteExpired\)/,
      ],
    ];
    for (const [call, message] of refusals) {
      await expect(call).rejects.toBeInstanceOf(ConfigError);
      await expect(call).rejects.toThrow(message);
    }
    expect(store.records.get(session.id)?.data).toEqual({});
  });

  it('account changes that must end sessions refuse before writing anything', async () => {
    const accounts = new MemoryStore();
    const latchkey = new Latchkey({ store: new MapStore(), users: accounts });
    const ada = await latchkey.createUser('ada', 'correct horse battery');
    await expect(latchkey.disableUser(ada.id)).rejects.toThrow(/^disableUser: .*"session index"/);
    await expect(latchkey.deleteUser(ada.id)).rejects.toThrow(/^deleteUser: .*"session index"/);
    await expect(latchkey.changePassword(ada.id, 'another passphrase')).rejects.toThrow(
      /^changePassword: .*"session index"/,
    );
    expect(await latchkey.findUser('ada')).toMatchObject({ disabled: false });
    expect(
      await latchkey.login({ username: 'ada', password: 'correct horse battery' }),
    ).toMatchObject({
      ok: true,
    });
    // Keeping the other sessions needs no index.
    expect(
      await latchkey.changePassword(ada.id, 'another passphrase', { signOutOthers: false }),
    ).toBe(true);
  });

  it('remember-me needs the session index: a replayed token must end every session of the user', () => {
    const durable = new MemoryStore();
    expect(
      () => new Latchkey({ store: new MapStore(), users: durable, remember: { store: durable } }),
    ).toThrow(
      new ConfigError(
        'remember: needs a store with the "session index" capability (missing createCapped, listByUser, deleteByUser)',
      ),
    );
  });
});

describe('options that need a capability', () => {
  const store = new MemoryStore();
  const bare = new MapStore();
  it.each([
    [
      { throttle: { store: bare } },
      /^throttle\.store: needs a store with the "throttle" capability \(missing consumeAttempt, resetAttempts, deleteExpiredAttempts\)$/,
    ],
    [
      { remember: { store: bare } },
      /^remember\.store: needs a store with the "remember" capability/,
    ],
    [{ users: bare }, /^users: needs a store with the "users" capability \(missing createUser,/],
  ])('%o is a ConfigError naming it', (options, message) => {
    const build = () => new Latchkey({ store, ...(options as object) });
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(message);
  });
});

describe('the session cap, decided in the engine', () => {
  it('25 parallel creates at a cap of 3 all succeed and leave exactly 3, each eviction told once', async () => {
    const store = new MemoryStore();
    const evicted: string[] = [];
    const sessions = new Sessions({
      store,
      maxSessionsPerUser: 3,
      onEvent: (event) => {
        if (event.type === 'evicted') evicted.push(event.sessionId);
      },
    });
    const first = await Promise.all([1, 2, 3].map(() => sessions.create('user-1')));
    const issued = await Promise.all(Array.from({ length: 25 }, () => sessions.create('user-1')));
    expect(issued).toHaveLength(25);
    const live = await sessions.listSessions('user-1');
    expect(live).toHaveLength(3);
    expect(evicted).toHaveLength(25);
    expect(new Set(evicted).size).toBe(25);
    for (const { session } of first) expect(evicted).toContain(session.id);
    for (const session of live) expect(evicted).not.toContain(session.id);
  });

  it('reject lets exactly the cap through a parallel burst', async () => {
    const sessions = new Sessions({
      store: new MemoryStore(),
      maxSessionsPerUser: 3,
      onSessionLimit: 'reject',
    });
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => sessions.create('u')),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    for (const result of results) {
      if (result.status === 'rejected')
        expect(result.reason).toMatchObject({ name: 'SessionLimitError', limit: 3 });
    }
  });

  it('a store that never makes room ends in SessionLimitError after a bounded number of rounds', async () => {
    const inner = new MemoryStore();
    let rounds = 0;
    const stuck = Object.assign(Object.create(inner) as MemoryStore, {
      createCapped: async () => {
        rounds++;
        return false;
      },
      listByUser: async () => [],
    });
    const sessions = new Sessions({ store: stuck, maxSessionsPerUser: 1 });
    await expect(sessions.create('u')).rejects.toMatchObject({ name: 'SessionLimitError' });
    expect(rounds).toBe(128);
  });

  it('without a cap, create uses the plain create, never the capped one', async () => {
    const inner = new MemoryStore();
    const calls: string[] = [];
    const store = Object.assign(Object.create(inner) as MemoryStore, {
      create: (record: SessionRecord) => {
        calls.push('create');
        return inner.create(record);
      },
      createCapped: (record: SessionRecord, max: number) => {
        calls.push('createCapped');
        return inner.createCapped(record, max);
      },
    });
    const { session } = await new Sessions({ store }).create('u');
    await new Sessions({ store, maxSessionsPerUser: 2 }).rotate(session);
    expect(calls).toEqual(['create', 'create']);
    await new Sessions({ store, maxSessionsPerUser: 2 }).create('u');
    expect(calls).toEqual(['create', 'create', 'createCapped']);
  });
});
