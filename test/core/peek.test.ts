import { Latchkey, MemoryStore, type SessionEvent } from 'latchkey';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/clock.js';
import { countCalls } from '../helpers/counting-store.js';

describe('peek (read-only lookup)', () => {
  it('reads once and never refreshes, deletes or emits, whatever it finds', async () => {
    const clock = new FakeClock();
    const memory = new MemoryStore();
    const { store, calls } = countCalls(memory);
    const events: SessionEvent[] = [];
    const auth = new Latchkey({
      store,
      idleTimeout: '10m',
      touchInterval: '1m',
      clock: clock.now,
      onEvent: (event) => events.push(event),
    });
    const { session, token } = await auth.create('user-1');
    events.length = 0;

    clock.advance(5 * 60_000);
    expect((await auth.peek(token))?.id).toBe(session.id);
    expect((await memory.get(session.id))?.lastSeenAt).toBe(session.lastSeenAt);

    clock.advance(6 * 60_000);
    expect(await auth.peek(token)).toBeNull();
    expect(await memory.get(session.id)).not.toBeNull();
    expect(await auth.peek('not a token')).toBeNull();
    expect(events).toEqual([]);
    expect(calls).toMatchObject({ create: 1, get: 2, touch: 0, delete: 0 });
  });
});
