import { Latchkey, MemoryStore, type SessionRecord, type SessionStore } from 'latchkey';
import { describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../helpers/clock.js';
import { countCalls } from '../helpers/counting-store.js';

const MINUTE = 60_000;

/** A store whose reads answer what it held before the writes still in flight (like a replica or cache). */
function slowTouches(inner: SessionStore): SessionStore & { release(): void; pending(): number } {
  const waiting: (() => void)[] = [];
  return Object.assign(Object.create(inner) as SessionStore, {
    get: (id: string) => inner.get(id),
    touch: (id: string, lastSeenAt: number, idleExpiresAt: number) =>
      new Promise<void>((resolve) => {
        waiting.push(() => resolve(inner.touch(id, lastSeenAt, idleExpiresAt)));
      }),
    release: () => {
      for (const done of waiting.splice(0)) done();
    },
    pending: () => waiting.length,
  });
}

describe('sliding refresh under concurrency', () => {
  it('50 requests of one session arriving together past the interval write one refresh', async () => {
    const clock = new FakeClock();
    const { store, calls } = countCalls(new MemoryStore());
    const slow = slowTouches(store);
    const latchkey = new Latchkey({ store: slow, touchInterval: '1m', clock: clock.now });
    const { token, session } = await latchkey.create('user-1');
    clock.advance(2 * MINUTE);
    const pending = Array.from({ length: 50 }, () => latchkey.validate(token));
    // Every request has read the session and one refresh is in flight: release it only then.
    await vi.waitFor(() => {
      expect(calls.get).toBe(50);
      expect(slow.pending()).toBe(1);
    });
    slow.release();
    const results = await Promise.all(pending);
    expect(calls.touch).toBe(1);
    for (const result of results) {
      const refreshed = result.session as SessionRecord;
      expect(refreshed.lastSeenAt).toBe(session.createdAt + 2 * MINUTE);
      expect(refreshed.idleExpiresAt).toBe(session.createdAt + 2 * MINUTE + 30 * MINUTE);
    }
    // The next interval writes again, once.
    clock.advance(2 * MINUTE);
    const next = Array.from({ length: 10 }, () => latchkey.validate(token));
    await vi.waitFor(() => {
      expect(calls.get).toBe(60);
      expect(slow.pending()).toBe(1);
    });
    slow.release();
    await Promise.all(next);
    expect(calls.touch).toBe(2);
  });

  it('a failed refresh is retried by the next request', async () => {
    const clock = new FakeClock();
    let fail = true;
    const memory = new MemoryStore();
    const store = Object.assign(Object.create(memory) as SessionStore, {
      get: (id: string) => memory.get(id),
      touch: (id: string, at: number, idle: number) =>
        fail ? Promise.reject(new Error('ECONNRESET')) : memory.touch(id, at, idle),
    });
    const latchkey = new Latchkey({ store, touchInterval: '1m', clock: clock.now });
    const { token } = await latchkey.create('user-1');
    clock.advance(2 * MINUTE);
    await expect(latchkey.validate(token)).rejects.toThrow();
    fail = false;
    await latchkey.validate(token);
    expect((await memory.get((await latchkey.validate(token)).session?.id ?? ''))?.lastSeenAt).toBe(
      clock.now(),
    );
  });
});
