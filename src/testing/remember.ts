import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RememberStore } from '../core/capabilities.js';
import type { RememberRecord } from '../core/store.js';
import { type StoreHarness, useStore } from './harness.js';

const T0 = Date.now();
function token(overrides: Partial<RememberRecord> = {}): RememberRecord {
  return {
    selector: randomBytes(12).toString('base64url'),
    validatorHash: randomBytes(32).toString('base64url'),
    userId: 'user-1',
    createdAt: T0,
    expiresAt: T0 + 30 * 86_400_000,
    replacedBy: null,
    replacedAt: null,
    ...overrides,
  };
}

export function describeRememberStore(
  name: string,
  harness: StoreHarness<RememberStore & { close(): Promise<void> }>,
): void {
  describe(`RememberStore contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: RememberStore;
    beforeEach(() => {
      store = current();
    });

    it('creates, finds and deletes a token', async () => {
      const t = token();
      await store.createRemember(t);
      expect(await store.findRemember(t.selector)).toEqual(t);
      expect(await store.deleteRemember(t.selector)).toBe(true);
      expect(await store.findRemember(t.selector)).toBeNull();
      expect(await store.deleteRemember(t.selector)).toBe(false);
    });

    it('rotation marks the old token replaced and inserts the successor, once', async () => {
      const old = token();
      const successor = token();
      await store.createRemember(old);
      expect(await store.rotateRemember(old.selector, successor, T0 + 5)).toBe(true);
      expect(await store.findRemember(old.selector)).toEqual({
        ...old,
        replacedBy: successor.selector,
        replacedAt: T0 + 5,
      });
      expect(await store.findRemember(successor.selector)).toEqual(successor);
      const late = token();
      expect(await store.rotateRemember(old.selector, late, T0 + 6)).toBe(false);
      expect(await store.findRemember(late.selector)).toBeNull();
      expect(await store.rotateRemember('missing', token(), T0)).toBe(false);
    });

    it('parallel rotations of one token: exactly one wins', async () => {
      const old = token();
      await store.createRemember(old);
      const successors = Array.from({ length: 10 }, () => token());
      const results = await Promise.all(
        successors.map((s) => store.rotateRemember(old.selector, s, T0)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = successors[results.indexOf(true)] as RememberRecord;
      expect((await store.findRemember(old.selector))?.replacedBy).toBe(winner.selector);
    });

    it('deletes all of one user’s tokens and expired tokens', async () => {
      const a = token();
      const b = token();
      const other = token({ userId: 'user-2', expiresAt: T0 + 10 });
      for (const t of [a, b, other]) await store.createRemember(t);
      expect(await store.deleteRememberByUser('user-1')).toBe(2);
      expect(await store.findRemember(a.selector)).toBeNull();
      expect(await store.deleteExpiredRemember(T0 + 10)).toBe(1);
      expect(await store.findRemember(other.selector)).toBeNull();
    });
  });
}
