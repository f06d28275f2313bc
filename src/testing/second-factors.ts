import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SecondFactorStore, UserStore } from '../core/capabilities.js';
import type { FactorRecord } from '../core/store.js';
import { type StoreHarness, useStore } from './harness.js';
import { T0 } from './records.js';
import { user } from './users.js';

/** A factor record (a fresh random id), with `overrides` applied. */
export function factor(overrides: Partial<FactorRecord> = {}): FactorRecord {
  return {
    id: randomBytes(16).toString('base64url'),
    userId: 'user-1',
    kind: 'totp',
    name: 'Phone',
    secret: randomBytes(40).toString('base64url'),
    counter: 0,
    confirmed: true,
    createdAt: T0,
    lastUsedAt: null,
    ...overrides,
  };
}

export function describeSecondFactorStore(
  name: string,
  harness: StoreHarness<SecondFactorStore & { close(): Promise<void> }>,
): void {
  describe(`SecondFactorStore contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: SecondFactorStore;
    beforeEach(() => {
      store = current();
    });

    it('creates and lists a user’s factors, oldest first, every field intact', async () => {
      const later = factor({ createdAt: T0 + 2, kind: 'passkey', name: 'YubiKey 🔑', counter: 7 });
      const first = factor({ createdAt: T0, confirmed: false, lastUsedAt: T0 + 1 });
      const recovery = factor({ createdAt: T0 + 1, kind: 'recovery', name: '' });
      const other = factor({ userId: 'user-2' });
      for (const f of [later, first, recovery, other]) await store.createFactor(f);
      expect(await store.listFactors('user-1')).toEqual([first, recovery, later]);
      expect(await store.listFactors('user-2')).toEqual([other]);
      expect(await store.listFactors('nobody')).toEqual([]);
    });

    it('factors created in the same millisecond list by id', async () => {
      const made = Array.from({ length: 5 }, () => factor({ kind: 'recovery', name: '' }));
      for (const f of made) await store.createFactor(f);
      const ids = made.map((f) => f.id).sort();
      expect((await store.listFactors('user-1')).map((f) => f.id)).toEqual(ids);
    });

    it('updateFactor renames and confirms, and only the owner’s factor', async () => {
      const f = factor({ confirmed: false });
      await store.createFactor(f);
      expect(await store.updateFactor('user-2', f.id, { name: 'Stolen' })).toBe(false);
      expect(await store.updateFactor('user-1', f.id, { name: 'Work phone' })).toBe(true);
      expect(await store.listFactors('user-1')).toEqual([{ ...f, name: 'Work phone' }]);
      expect(await store.updateFactor('user-1', f.id, { confirmed: true })).toBe(true);
      expect(await store.listFactors('user-1')).toEqual([
        { ...f, name: 'Work phone', confirmed: true },
      ]);
      expect(await store.updateFactor('user-1', 'missing', { name: 'x' })).toBe(false);
    });

    it('advanceFactorCounter only moves the counter upwards, and sets lastUsedAt', async () => {
      const f = factor({ counter: 10 });
      await store.createFactor(f);
      expect(await store.advanceFactorCounter('user-1', f.id, 10, T0 + 5)).toBe(false);
      expect(await store.advanceFactorCounter('user-1', f.id, 9, T0 + 5)).toBe(false);
      expect(await store.listFactors('user-1')).toEqual([f]);
      expect(await store.advanceFactorCounter('user-1', f.id, 11, T0 + 5)).toBe(true);
      expect(await store.listFactors('user-1')).toEqual([
        { ...f, counter: 11, lastUsedAt: T0 + 5 },
      ]);
      expect(await store.advanceFactorCounter('user-2', f.id, 99, T0 + 6)).toBe(false);
      expect(await store.advanceFactorCounter('user-1', 'missing', 99, T0 + 6)).toBe(false);
    });

    it('counters beyond 32 bits round-trip (a TOTP step, a passkey counter)', async () => {
      const f = factor({ counter: 2 ** 32 + 3 });
      await store.createFactor(f);
      expect(await store.listFactors('user-1')).toEqual([f]);
      expect(await store.advanceFactorCounter('user-1', f.id, 2 ** 40, T0)).toBe(true);
      expect((await store.listFactors('user-1'))[0]?.counter).toBe(2 ** 40);
    });

    it('parallel advances to one counter: exactly one wins', async () => {
      const f = factor({ counter: 100 });
      await store.createFactor(f);
      const results = await Promise.all(
        Array.from({ length: 10 }, () => store.advanceFactorCounter('user-1', f.id, 101, T0)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('deleteFactor deletes once: of parallel deletes of one code, one gets true', async () => {
      const code = factor({ kind: 'recovery', name: '' });
      const kept = factor();
      await store.createFactor(code);
      await store.createFactor(kept);
      expect(await store.deleteFactor('user-2', code.id)).toBe(false);
      const results = await Promise.all(
        Array.from({ length: 10 }, () => store.deleteFactor('user-1', code.id)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.listFactors('user-1')).toEqual([kept]);
    });

    it('deleteFactors takes one kind or all, of one user only', async () => {
      const totp = factor();
      const codes = [1, 2, 3].map((n) => factor({ kind: 'recovery', name: '', createdAt: T0 + n }));
      const passkey = factor({ kind: 'passkey', createdAt: T0 + 9 });
      const other = factor({ userId: 'user-2', kind: 'recovery', name: '' });
      for (const f of [totp, ...codes, passkey, other]) await store.createFactor(f);
      expect(await store.deleteFactors('user-1', 'recovery')).toBe(3);
      expect(await store.listFactors('user-1')).toEqual([totp, passkey]);
      expect(await store.deleteFactors('user-1')).toBe(2);
      expect(await store.listFactors('user-1')).toEqual([]);
      expect(await store.deleteFactors('user-1')).toBe(0);
      expect(await store.listFactors('user-2')).toEqual([other]);
    });
  });
}

/** For a store that keeps accounts too: deleting an account takes its second factors with it. */
export function describeAccountFactors(
  name: string,
  harness: StoreHarness<UserStore & SecondFactorStore & { close(): Promise<void> }>,
): void {
  describe(`UserStore with second factors: ${name}`, () => {
    const current = useStore(name, harness);

    it('deleteUser deletes the user’s factors and no one else’s', async () => {
      const store = current();
      const gone = user();
      const kept = user();
      for (const u of [gone, kept]) {
        await store.createUser(u);
        await store.createFactor(factor({ userId: u.id }));
      }
      expect(await store.deleteUser(gone.id)).toBe(true);
      expect(await store.listFactors(gone.id)).toEqual([]);
      expect(await store.listFactors(kept.id)).toHaveLength(1);
    });
  });
}
