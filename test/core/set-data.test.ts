import {
  DataTooLargeError,
  InvalidInputError,
  Latchkey,
  MemoryStore,
  type SessionStore,
  StoreUnavailableError,
} from 'latchkey';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/clock.js';
import { countCalls } from '../helpers/counting-store.js';

const MINUTE = 60_000;

function setup() {
  const clock = new FakeClock();
  const memory = new MemoryStore();
  const { store, calls } = countCalls(memory);
  const auth = new Latchkey({ store, touchInterval: '1m', clock: clock.now });
  return { auth, clock, memory, calls };
}

describe('setData', () => {
  it('sets keys, removes keys given null, keeps the rest and every other field', async () => {
    const { auth, clock, memory } = setup();
    const { session } = await auth.create('user-1', { data: { theme: 'dark', cart: [1] } });
    clock.advance(5 * MINUTE);
    expect(await auth.setData(session.id, { cart: [1, 2], theme: null, locale: 'fr' })).toBe(true);
    expect(await memory.get(session.id)).toEqual({
      ...session,
      data: { cart: [1, 2], locale: 'fr' },
    });
    // Values are replaced whole: a nested null is a value, not a removal.
    expect(await auth.setData(session.id, { cart: { items: null }, absent: null })).toBe(true);
    expect((await memory.get(session.id))?.data).toEqual({ cart: { items: null }, locale: 'fr' });
    expect(await auth.setData(session.id, {})).toBe(true);
    expect((await memory.get(session.id))?.lastSeenAt).toBe(session.lastSeenAt);
  });

  it('gives false for an unknown or revoked session and creates nothing', async () => {
    const { auth, memory } = setup();
    const unknown = Buffer.alloc(32, 7).toString('base64url');
    expect(await auth.setData(unknown, { a: 1 })).toBe(false);
    expect(await memory.get(unknown)).toBeNull();
    const { session } = await auth.create('user-1');
    await auth.revoke(session.id);
    expect(await auth.setData(session.id, { a: 1 })).toBe(false);
    expect(memory.size).toBe(0);
  });

  it('a key named __proto__ is data, never a prototype', async () => {
    const { auth, memory } = setup();
    const { session } = await auth.create('user-1');
    const patch = JSON.parse('{"__proto__":{"admin":true}}');
    expect(await auth.setData(session.id, patch)).toBe(true);
    const data = (await memory.get(session.id))?.data ?? {};
    expect(Object.hasOwn(data, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(await auth.setData(session.id, JSON.parse('{"__proto__":null}'))).toBe(true);
    expect((await memory.get(session.id))?.data).toEqual({});
  });

  it('rejects a patch that is not a plain JSON object, without calling the store', async () => {
    const { auth, memory, calls } = setup();
    const { session } = await auth.create('user-1', { data: { keep: 1 } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const sparse: unknown[] = [1];
    sparse[2] = 3;
    const bad: [unknown, RegExp][] = [
      [null, /plain JSON object/],
      [[1, 2], /plain JSON object/],
      ['text', /plain JSON object/],
      [new Date(), /plain JSON object/],
      [{ when: new Date() }, /"when": must be JSON/],
      [{ n: Number.NaN }, /finite number/],
      [{ n: Number.POSITIVE_INFINITY }, /finite number/],
      [{ u: undefined }, /undefined is not JSON/],
      [{ f: () => 1 }, /function is not JSON/],
      [{ b: 1n }, /bigint is not JSON/],
      [{ s: 'a\u0000b' }, /U\+0000/],
      [{ 'a\u0000': 1 }, /U\+0000/],
      [{ s: '\ud800' }, /lone surrogate/],
      [{ list: sparse }, /holes/],
      [cyclic, /nested more than 64/],
      [{ [Symbol('s')]: 1 }, /symbol keys/],
      [{ big: 'x'.repeat(8192) }, /at most 8192 bytes/],
    ];
    for (const [patch, message] of bad) {
      await expect(auth.setData(session.id, patch as never)).rejects.toThrow(InvalidInputError);
      await expect(auth.setData(session.id, patch as never)).rejects.toThrow(message);
    }
    await expect(auth.setData(42 as never, { a: 1 })).rejects.toThrow(/sessionId/);
    expect(calls.updateData).toBe(0);
    expect((await memory.get(session.id))?.data).toEqual({ keep: 1 });
  });

  it('refuses to grow the merged data past 8,192 bytes and writes nothing; shrinking works', async () => {
    const { auth, memory } = setup();
    const { session } = await auth.create('user-1', { data: { a: 'x'.repeat(5000) } });
    await expect(auth.setData(session.id, { b: 'y'.repeat(4000) })).rejects.toThrow(
      DataTooLargeError,
    );
    await expect(auth.setData(session.id, { b: 'y'.repeat(4000) })).rejects.toThrow(
      /merged data would exceed 8192 bytes; nothing was changed/,
    );
    expect((await memory.get(session.id))?.data).toEqual({ a: 'x'.repeat(5000) });
    expect(await auth.setData(session.id, { a: null, b: 'y'.repeat(4000) })).toBe(true);
    expect((await memory.get(session.id))?.data).toEqual({ b: 'y'.repeat(4000) });
  });

  it('100 parallel calls on different keys all land', async () => {
    const { auth, memory } = setup();
    const { session } = await auth.create('user-1');
    await Promise.all(Array.from({ length: 100 }, (_, i) => auth.setData(session.id, { [i]: i })));
    expect(Object.keys((await memory.get(session.id))?.data ?? {})).toHaveLength(100);
  });

  it('a store failure is StoreUnavailableError', async () => {
    const down = new MemoryStore();
    const store: SessionStore = Object.assign(Object.create(down) as MemoryStore, {
      updateData: () => Promise.reject(new Error('ECONNREFUSED')),
    });
    const auth = new Latchkey({ store });
    await expect(auth.setData('some-id', { a: 1 })).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
