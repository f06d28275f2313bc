import { randomBytes } from 'node:crypto';
import { Latchkey } from 'latchkey';
import { describe, expect, it } from 'vitest';
import { admin } from '../helpers/postgres-server.js';
import { MINUTE, postgresStores, record, until } from '../helpers/postgres-stores.js';

const fixture = postgresStores();

describe('PostgreSQL validation cache', () => {
  it('a sweep on one process drops the swept sessions from the other’s cache', async () => {
    const [a, b] = await Promise.all([
      fixture.openStore({ cache: true }),
      fixture.openStore({ cache: true }),
    ]);
    const deadline = Date.now() + 10 * MINUTE;
    const doomed = record({ idleExpiresAt: deadline });
    const kept = record({ idleExpiresAt: deadline + MINUTE });
    await a.store.create(doomed);
    await a.store.create(kept);
    await b.store.get(doomed.id);
    await b.store.get(kept.id);
    expect(b.store.cache?.size()).toBe(2);
    expect(await a.store.deleteExpired(deadline)).toBe(1);
    expect(await b.store.get(doomed.id)).toBeNull();
    b.reset();
    expect((await b.store.get(kept.id))?.id).toBe(kept.id);
    expect(b.count()).toBe(0);
  });

  it('switches off when its LISTEN connection is killed, and back on once it listens again', async () => {
    const applicationName = `latchkey-test-${randomBytes(4).toString('hex')}`;
    const { store, count, reset } = await fixture.openStore({ cache: true, applicationName });
    const other = await fixture.openStore();
    const auth = new Latchkey({ store });
    const { token, session } = await auth.create('ada');
    await auth.validate(token);
    const [listener] = await admin<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [`latchkey cache ${fixture.schema}`],
    );
    expect(listener).toBeDefined();
    await admin('SELECT pg_terminate_backend($1)', [listener?.pid]);
    const noticedIn = await until(() => store.cache?.active === false);
    // While off, invalidations may be lost: every read must go to PostgreSQL.
    expect(store.cache?.size()).toBe(0);
    await other.store.delete(session.id);
    reset();
    expect((await auth.validate(token)).reason).toBe('not_found');
    expect(count()).toBeGreaterThan(0);

    const back = await auth.create('ada');
    const reconnectedIn = await until(() => store.cache?.active === true);
    console.info(
      `postgres cache: off ${noticedIn} ms after the kill, listening again ${reconnectedIn} ms later`,
    );
    await auth.validate(back.token);
    reset();
    await auth.validate(back.token);
    expect(count()).toBe(0);
    // Invalidations reach it again.
    await other.store.delete(back.session.id);
    await until(() => store.cache?.lookup(back.session.id) === null, 2000);
    expect((await auth.validate(back.token)).reason).toBe('not_found');
  });

  it('after an invalidation, concurrent reads of one session send one query between them', async () => {
    const [a, b] = await Promise.all([fixture.openStore({ cache: true }), fixture.openStore()]);
    const created = record();
    await a.store.create(created);
    await a.store.get(created.id);
    const idleExpiresAt = created.idleExpiresAt + MINUTE;
    await b.store.touch(created.id, created.lastSeenAt + 1, idleExpiresAt);
    await until(() => a.store.cache?.size() === 0, 2000);
    a.reset();
    const before = a.store.cache?.stats();
    const reads = await Promise.all(Array.from({ length: 20 }, () => a.store.get(created.id)));
    expect(reads.map((read) => read?.idleExpiresAt)).toEqual(Array(20).fill(idleExpiresAt));
    expect(a.count()).toBe(1);
    // Each read counted once: the one that queried a miss, the 19 that waited for it hits.
    const after = a.store.cache?.stats();
    expect((after?.missCount ?? 0) - (before?.missCount ?? 0)).toBe(1);
    expect((after?.hitCount ?? 0) - (before?.hitCount ?? 0)).toBe(19);
  });

  it('a read an invalidation reached is shared with no one who asks after it', async () => {
    const [a, b] = await Promise.all([
      fixture.openStore({ cache: true, maxConnections: 1 }),
      fixture.openStore(),
    ]);
    const created = record();
    await a.store.create(created);
    // The pool's only connection held: the first read waits for it with its query unsent.
    const held = await a.pool.connect();
    a.reset();
    const first = a.store.get(created.id);
    await until(() => a.store.cache?.fill(created.id) !== undefined);
    const idleExpiresAt = created.idleExpiresAt + MINUTE;
    await b.store.touch(created.id, created.lastSeenAt + 1, idleExpiresAt);
    await until(() => a.store.cache?.fill(created.id) === undefined, 2000);
    const later = Array.from({ length: 10 }, () => a.store.get(created.id));
    held.release();
    const reads = await Promise.all([first, ...later]);
    expect(reads.map((read) => read?.idleExpiresAt)).toEqual(Array(11).fill(idleExpiresAt));
    // The first read, and one for the ten that came after the invalidation.
    expect(a.count()).toBe(2);
  });

  it('a store with the cache off still notifies stores that have it on', async () => {
    const [plain, cached] = await Promise.all([
      fixture.openStore(),
      fixture.openStore({ cache: true }),
    ]);
    const created = record();
    await plain.store.create(created);
    await cached.store.get(created.id);
    expect(cached.store.cache?.size()).toBe(1);
    await plain.store.delete(created.id);
    await until(() => cached.store.cache?.size() === 0, 1000);
    expect(await cached.store.get(created.id)).toBeNull();
  });
});
