import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SessionStore } from '../core/store.js';
import { type StoreHarness, useStore } from './harness.js';
import { MINUTE, record, T0 } from './records.js';

/** The required port: every SessionStore passes this, whatever else it can do. */
export function describeSessionStore<S extends SessionStore>(
  name: string,
  harness: StoreHarness<S>,
): void {
  describe(`SessionStore contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: S;
    beforeEach(() => {
      store = current();
    });

    it('create then get returns the same record, JSON fields included', async () => {
      const created = record({
        user: { name: 'Zoë 🦊', tags: ['a', 'b'] },
        data: { theme: 'dark' },
      });
      expect(await store.create(created)).toBeUndefined();
      expect(await store.get(created.id)).toEqual(created);
    });

    it('null ip and user agent round-trip as null', async () => {
      const created = record({ ip: null, userAgent: null });
      await store.create(created);
      expect(await store.get(created.id)).toEqual(created);
    });

    it('assurance level and methods round-trip, in order', async () => {
      const twoFactor = record({ aal: 2, amr: ['pwd', 'otp', 'mfa'] });
      const passkey = record({ aal: 2, amr: ['hwk', 'mfa'] });
      const password = record({ amr: ['pwd'] });
      for (const created of [twoFactor, passkey, password]) {
        await store.create(created);
        expect(await store.get(created.id)).toEqual(created);
      }
      // The default (what a record from before levels reads as) round-trips too.
      const plain = record();
      await store.create(plain);
      expect(await store.get(plain.id)).toMatchObject({ aal: 1, amr: [] });
    });

    it('get of an unknown id is null, not an error', async () => {
      expect(await store.get(randomBytes(32).toString('base64url'))).toBeNull();
    });

    it('get returns a record past its expiry so the core can delete it', async () => {
      // Real time: stores that expire records themselves (TTL) keep them a little past the deadline.
      const dead = record({
        createdAt: Date.now() - 10 * MINUTE,
        idleExpiresAt: Date.now() - 1_000,
      });
      await store.create(dead);
      expect(await store.get(dead.id)).toEqual(dead);
    });

    it('touch moves lastSeenAt and idleExpiresAt and nothing else', async () => {
      const created = record();
      await store.create(created);
      await store.touch(created.id, T0 + MINUTE, T0 + 31 * MINUTE);
      expect(await store.get(created.id)).toEqual({
        ...created,
        lastSeenAt: T0 + MINUTE,
        idleExpiresAt: T0 + 31 * MINUTE,
      });
    });

    it('touch of a missing id does not create it', async () => {
      const ghost = record();
      await store.touch(ghost.id, T0 + MINUTE, T0 + 31 * MINUTE);
      expect(await store.get(ghost.id)).toBeNull();
    });

    it('delete removes the record and reports whether it existed', async () => {
      const created = record();
      await store.create(created);
      expect(await store.delete(created.id)).toBe(true);
      expect(await store.get(created.id)).toBeNull();
      expect(await store.delete(created.id)).toBe(false);
    });

    it('unicode and 255-character user ids round-trip', async () => {
      const ids = ['Zoë-日本語-🦊', 'é'.normalize('NFD'), 'x'.repeat(255), '𝔘'.repeat(255)];
      for (const userId of ids) {
        const created = record({ userId });
        await store.create(created);
        expect(await store.get(created.id)).toEqual(created);
      }
    });

    it.skipIf(!harness.corrupt)(
      'an undecodable record reads as no session (null), never an error or a partial record',
      async () => {
        const id = randomBytes(32).toString('base64url');
        await harness.corrupt?.(store, id);
        expect(await store.get(id)).toBeNull();
        // Touching it never turns it into a session; deleting it is allowed.
        await store.touch(id, T0 + MINUTE, T0 + 31 * MINUTE);
        expect(await store.get(id)).toBeNull();
        await store.delete(id);
        expect(await store.get(id)).toBeNull();
      },
    );
  });
}
