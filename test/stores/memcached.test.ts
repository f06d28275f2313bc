import { randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { ConfigError, Sessions, StoreUnavailableError } from 'latchkey';
import { MemcachedStore } from 'latchkey/stores/memcached';
import { record } from 'latchkey/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type Cluster,
  exptimeFor,
  LINGER_MS,
  MAX_RELATIVE_EXPTIME,
} from '../../src/stores/memcached/connection.js';
import { hashed } from '../../src/stores/memcached/records.js';
import { memcachedUnavailable, PrivateMemcached, rawSet } from '../helpers/memcached-server.js';

const reason = await memcachedUnavailable();
if (reason) {
  if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') {
    throw new Error(`memcached is required (LATCHKEY_REQUIRE_SERVICES=1) but ${reason}`);
  }
  console.warn(`skipping the memcached store tests: ${reason}`);
}
const prefix = () => `lk-test:${randomBytes(6).toString('hex')}:`;
const BOUND = 8192;
const T0 = Date.UTC(2026, 0, 1);

describe('memcached exptime', () => {
  it('is relative seconds up to 30 days, a Unix timestamp beyond, never 0', () => {
    const now = Date.UTC(2026, 5, 1);
    expect(exptimeFor(now + 90_000, now)).toBe(90);
    expect(exptimeFor(now + MAX_RELATIVE_EXPTIME * 1000, now)).toBe(MAX_RELATIVE_EXPTIME);
    const far = now + MAX_RELATIVE_EXPTIME * 1000 + 1000;
    expect(exptimeFor(far, now)).toBe(Math.ceil(far / 1000));
    // A deadline already past (or near) lingers a minute, for callers whose clock differs.
    expect(exptimeFor(now - 5000, now)).toBe(LINGER_MS / 1000);
  });
});

describe('MemcachedStore options', () => {
  it('bad servers or options are a ConfigError', () => {
    for (const servers of ['', 'host:0', 'host:99999', 'a b:1', 'h:1:2', 'h:1,h:1', 'h:x']) {
      expect(() => new MemcachedStore(servers), servers).toThrow(ConfigError);
    }
    const bad = [
      { prefix: 'has space' },
      { prefix: 'x'.repeat(65) },
      { connectTimeout: 0 },
      { commandTimeout: Number.NaN },
      { maxConnections: 0 },
    ];
    for (const options of bad) {
      expect(() => new MemcachedStore('127.0.0.1:11211', options)).toThrow(ConfigError);
    }
    expect(() => new MemcachedStore('127.0.0.1:11211', null as never)).toThrow(ConfigError);
    expect(new MemcachedStore('memcached://a:1,b').servers).toEqual(['a:1', 'b:11211']);
  });
});

describe.skipIf(reason !== null)('MemcachedStore on a private memcached', () => {
  let server: PrivateMemcached;
  let store: MemcachedStore;
  beforeAll(async () => {
    server = await PrivateMemcached.start(['-m', '64']);
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(async () => {
    store = await MemcachedStore.connect(server.address, { prefix: prefix() });
  });
  afterEach(async () => {
    await store?.close();
  });

  it('100 parallel capped creates for one user with a cap of 5 leave exactly 5', async () => {
    const records = Array.from({ length: 100 }, (_, i) => record({ createdAt: T0 + i }));
    const results = await Promise.all(records.map((r) => store.createCapped(r, 5)));
    expect(results.filter(Boolean)).toHaveLength(5);
    const live = await store.listByUser('user-1', T0 + 200);
    expect(live).toHaveLength(5);
    const created = new Set(records.filter((_, i) => results[i]).map((r) => r.id));
    expect(new Set(live.map((r) => r.id))).toEqual(created);
    for (const [i, r] of records.entries()) {
      if (!results[i]) expect(await store.get(r.id)).toBeNull();
    }
  });

  it('a revoke-all racing capped creates never misses a session that could already be read', async () => {
    // The contract case's loop, with the capped create (its record is also written first).
    const survivors: string[] = [];
    for (let round = 0; round < 60; round++) {
      const created = record({ createdAt: T0 + round });
      const creating = store.createCapped(created, 100);
      for (let turn = 0; turn < round % 6; turn++) await Promise.resolve();
      if (round % 2 === 1) await new Promise((resolve) => setImmediate(resolve));
      const seen = await store.get(created.id);
      await store.deleteByUser('user-1');
      expect(await creating).toBe(true);
      if (seen !== null && (await store.get(created.id)) !== null) survivors.push(created.id);
    }
    expect(survivors).toEqual([]);
  });

  it('a revoke-all from another process during a slow create (capped or not) leaves no session', async () => {
    // The creating process reaches memcached through a proxy that holds every chunk 10 ms, so a
    // revoke-all from a second process runs wholly between the create's record and its entry:
    // only the create's second look at the revocation mark can take the session back.
    const prefixed = prefix();
    const proxy = createServer((client) => {
      const upstream = connect(server.port, '127.0.0.1');
      const relay = (from: Socket, to: Socket) =>
        from.on('data', (chunk) => setTimeout(() => to.write(chunk), 10));
      relay(client, upstream);
      relay(upstream, client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const slow = await MemcachedStore.connect(
      `127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      { prefix: prefixed },
    );
    const other = await MemcachedStore.connect(server.address, { prefix: prefixed });
    try {
      let seenBeforeRevoke = 0;
      const survivors: string[] = [];
      for (let round = 0; round < 20; round++) {
        const created = record({ createdAt: T0 + round });
        const creating = round % 2 === 0 ? slow.create(created) : slow.createCapped(created, 100);
        while ((await other.get(created.id)) === null) {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        seenBeforeRevoke++;
        await other.deleteByUser('user-1');
        await creating;
        if ((await other.get(created.id)) !== null) survivors.push(created.id);
      }
      expect(seenBeforeRevoke).toBe(20);
      expect(survivors).toEqual([]);
    } finally {
      await slow.close();
      await other.close();
      proxy.close();
    }
  });

  it('100 parallel patches of distinct keys all land', async () => {
    const created = record({ data: { keep: 1 } });
    await store.create(created);
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        store.updateData(created.id, { set: { [`k${i}`]: i }, remove: [], maxBytes: BOUND }),
      ),
    );
    expect(results.every((r) => r === 'updated')).toBe(true);
    const data = (await store.get(created.id))?.data ?? {};
    expect(Object.keys(data)).toHaveLength(101);
  });

  it('a value with foreign flags or bytes reads as no session, not as an outage', async () => {
    const id = randomBytes(32).toString('base64url');
    // Flags 2 is memcache-client's JSON flag: its own decoder would throw on these bytes.
    await rawSet(server.port, `${storePrefix(store)}s:${id}`, Buffer.from('{not json'), 2);
    expect(await store.get(id)).toBeNull();
    expect(await store.updateData(id, { set: { a: 1 }, remove: [], maxBytes: BOUND })).toBe(
      'missing',
    );
    // A record stored under another id is not this session either.
    const other = record();
    await rawSet(server.port, `${storePrefix(store)}s:${id}`, Buffer.from(JSON.stringify(other)));
    expect(await store.get(id)).toBeNull();
  });

  it('a record written before levels reads as aal 1 with no methods; a bad level or method as none', async () => {
    const { aal: _aal, amr: _amr, ...old } = record();
    await rawSet(server.port, `${storePrefix(store)}s:${old.id}`, Buffer.from(JSON.stringify(old)));
    expect(await store.get(old.id)).toEqual({ ...old, aal: 1, amr: [] });
    for (const bad of [{ aal: 3 }, { amr: ['pwd', 'sms'] }, { amr: 'pwd' }, { amr: ['pwd otp'] }]) {
      const stored = { ...record(), ...bad };
      await rawSet(
        server.port,
        `${storePrefix(store)}s:${stored.id}`,
        Buffer.from(JSON.stringify(stored)),
      );
      expect(await store.get(stored.id)).toBeNull();
    }
  });

  it('a record too large for an item is a rejection that says so, not a silent loss', async () => {
    const huge = record({ data: { blob: 'x'.repeat(1_100_000) } });
    await expect(store.create(huge)).rejects.toThrow(/item size limit/);
  });

  it('reads the server settings at connect and reports evictions', async () => {
    expect(store.info).toEqual([
      expect.objectContaining({ server: server.address, evicts: true, itemSizeMax: 1_048_576 }),
    ]);
    expect(await store.evictions()).toBeGreaterThanOrEqual(0);
  });
});

describe.skipIf(reason !== null)('MemcachedStore eviction honesty', () => {
  const servers: PrivateMemcached[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    vi.restoreAllMocks();
  });

  it('warns once when a server can evict, and counts its evictions', async () => {
    const tiny = await PrivateMemcached.start(['-m', '2']);
    servers.push(tiny);
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const first = await MemcachedStore.connect(tiny.address, { prefix: prefix() });
    const second = await MemcachedStore.connect(tiny.address, { prefix: prefix() });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/may evict live sessions.*-M/);
    // Fill it well past capacity: memcached evicts the least recently used sessions.
    const sessions = Array.from({ length: 300 }, () =>
      record({ data: { pad: 'p'.repeat(20_000) } }),
    );
    for (let i = 0; i < sessions.length; i += 50) {
      await Promise.all(sessions.slice(i, i + 50).map((r) => first.create(r)));
    }
    expect(await first.evictions()).toBeGreaterThan(0);
    // An evicted session reads as none: never as another user's record.
    for (const r of sessions) {
      const found = await first.get(r.id);
      if (found) expect(found.id).toBe(r.id);
    }
    await first.close();
    await second.close();
  });

  it('does not warn for a server run with -M', async () => {
    const strict = await PrivateMemcached.start(['-M']);
    servers.push(strict);
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const store = await MemcachedStore.connect(strict.address, { prefix: prefix() });
    expect(store.info[0]?.evicts).toBe(false);
    expect(warn).not.toHaveBeenCalled();
    await store.close();
  });

  it('connect rejects (not a ConfigError) when a server does not answer', async () => {
    const gone = await PrivateMemcached.start();
    await gone.stop();
    const attempt = MemcachedStore.connect(gone.address, { connectTimeout: 500 });
    await expect(attempt).rejects.toThrow();
    await expect(attempt).rejects.not.toBeInstanceOf(ConfigError);
  });
});

describe.skipIf(reason !== null)('MemcachedStore on two servers', () => {
  let a: PrivateMemcached;
  let b: PrivateMemcached;
  beforeEach(async () => {
    [a, b] = await Promise.all([PrivateMemcached.start(), PrivateMemcached.start()]);
  });
  afterEach(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });
  const open = () =>
    MemcachedStore.connect(`${a.address},${b.address}`, {
      prefix: prefix(),
      connectTimeout: 500,
      commandTimeout: 500,
    });

  it('losing one logs out only its sessions (no record, never 503); new ids land on the other; none left is an outage', async () => {
    const store = await open();
    const engine = new Sessions({ store });
    const issued = await Promise.all(
      Array.from({ length: 40 }, (_, i) => engine.create(`user-${i}`)),
    );
    const onA = issued.filter(({ session }) => store.serverOfSession(session.id) === a.address);
    const onB = issued.filter(({ session }) => store.serverOfSession(session.id) === b.address);
    expect(onA.length).toBeGreaterThan(0);
    expect(onB.length).toBeGreaterThan(0);
    for (const { token } of issued) expect((await engine.validate(token)).reason).toBeNull();

    await a.stop();
    for (const { token } of onA) expect((await engine.validate(token)).reason).toBe('not_found');
    for (const { token, session } of onB) {
      expect((await engine.validate(token)).session?.id).toBe(session.id);
    }
    // New sessions (users whose index item is on B) all land on B, and validate.
    const usersOnB = Array.from({ length: 60 }, (_, i) => `new-${i}`)
      .filter((user) => serverOfUser(store, user) === b.address)
      .slice(0, 10);
    expect(usersOnB).toHaveLength(10);
    for (const user of usersOnB) {
      const { session, token } = await engine.create(user);
      expect(store.serverOfSession(session.id)).toBe(b.address);
      expect((await engine.validate(token)).reason).toBeNull();
      expect((await engine.listSessions(user)).map((s) => s.id)).toEqual([session.id]);
    }
    // A user whose index item is on A cannot log in, list or log out everywhere: 503, so "log
    // out everywhere" never misses a session.
    const userOnA = Array.from({ length: 60 }, (_, i) => `a-${i}`).find(
      (user) => serverOfUser(store, user) === a.address,
    ) as string;
    await expect(engine.create(userOnA)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(engine.listSessions(userOnA)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(engine.revokeAllForUser(userOnA)).rejects.toBeInstanceOf(StoreUnavailableError);

    // Both down: every call is an outage, never "logged out".
    await b.stop();
    const { token } = onB[0] as (typeof onB)[number];
    await expect(engine.validate(token)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(engine.create(usersOnB[0] as string)).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await expect(store.evictions()).rejects.toThrow();

    // Back (empty): the probe finds them again; old sessions are gone, new ones work.
    await Promise.all([a.resume(), b.resume()]);
    await vi.waitFor(async () => expect((await engine.validate(token)).reason).toBe('not_found'), {
      timeout: 5000,
    });
    // A's probe keeps its own schedule (A went down first), so it may find A after B; a create
    // for a user on A reads A first (its revocation mark) and works once A is found.
    const again = await vi.waitFor(() => engine.create(userOnA), { timeout: 5000 });
    expect((await engine.validate(again.token)).reason).toBeNull();
    await store.close();
  });

  it('a session "log out everywhere" could not reach stays out once its server answers again (flushed)', async () => {
    const store = await open();
    const engine = new Sessions({ store });
    // A user whose index item is on A, with sessions on both servers.
    const user = Array.from({ length: 60 }, (_, i) => `u-${i}`).find(
      (id) => serverOfUser(store, id) === a.address,
    ) as string;
    const issued = await Promise.all(Array.from({ length: 12 }, () => engine.create(user)));
    const onA = issued.filter(({ session }) => store.serverOfSession(session.id) === a.address);
    const onB = issued.filter(({ session }) => store.serverOfSession(session.id) === b.address);
    expect(onA.length).toBeGreaterThan(0);
    expect(onB.length).toBeGreaterThan(0);

    // B keeps its items but stops answering, as across a partition.
    await b.freeze();
    for (const { token } of onB) expect((await engine.validate(token)).reason).toBe('not_found');
    // "Log out everywhere" deletes what it reaches, and fails (503) rather than report success.
    await expect(engine.revokeAllForUser(user)).rejects.toBeInstanceOf(StoreUnavailableError);
    for (const { token } of onA) expect((await engine.validate(token)).reason).toBe('not_found');

    // B answers again with its items: the store flushes it before using it, so none comes back.
    b.thaw();
    const fresh = await waitForServer(engine, store, user, b.address);
    for (const { token } of onB) expect((await engine.validate(token)).reason).toBe('not_found');
    expect((await engine.validate(fresh)).reason).toBeNull();
    expect(await engine.revokeAllForUser(user)).toBe(1);
    await store.close();
  });
});

/** The server that holds a user's index item. */
function serverOfUser(store: MemcachedStore, userId: string): string {
  const cluster = (store as unknown as { memcached: Cluster }).memcached;
  return cluster.serverOf(cluster.key(`u:${hashed(userId)}`));
}

/** Creates sessions for `user` until one lands on `server` (which is then up again); its token. */
async function waitForServer(
  engine: Sessions,
  store: MemcachedStore,
  user: string,
  server: string,
): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const { session, token } = await engine.create(user);
    if (store.serverOfSession(session.id) === server) return token;
    await engine.revoke(session.id);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no new session landed on ${server}`);
}

/** The prefix a store was opened with (its keys start with it). */
function storePrefix(store: MemcachedStore): string {
  return (store as unknown as { memcached: { key(name: string): string } }).memcached.key('');
}

describe.skipIf(reason !== null)('MemcachedStore throttle on tiny items', () => {
  let small: PrivateMemcached;
  beforeAll(async () => {
    // 2 KiB items: a window-end shard overflows after about 30 windows.
    small = await PrivateMemcached.start(['-I', '2048', '-o', 'slab_chunk_max=2048']);
  });
  afterAll(async () => {
    await small?.stop();
  });

  it('a full window-end index never fails an attempt: it is trimmed, and sweeps still count', async () => {
    const store = await MemcachedStore.connect(small.address, { prefix: prefix() });
    expect(store.info[0]?.itemSizeMax).toBe(2048);
    const now = Date.now();
    const rule = { windowMs: 1000, limit: 5, freeAttempts: 5, delays: [0] };
    const decisions = [];
    for (let i = 0; i < 600; i++) decisions.push(await store.consumeAttempt(`ip:${i}`, now, rule));
    expect(decisions.every((d) => d.allowed)).toBe(true);
    const swept = await store.deleteExpiredAttempts(now + 1000);
    expect(swept).toBeGreaterThan(0);
    // Trimmed shards forgot some windows (they expire by themselves): the sweep counts fewer.
    expect(swept).toBeLessThan(600);
    await store.close();
  });
});
