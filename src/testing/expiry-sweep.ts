import { beforeEach, describe, expect, it } from 'vitest';
import { type ExpirySweep, hasCapability } from '../core/capabilities.js';
import type { SessionStore } from '../core/store.js';
import { type StoreHarness, useStore } from './harness.js';
import { MINUTE, record } from './records.js';

/** The "expiry sweep" capability: bulk deletion of dead sessions. */
export function describeExpirySweep<S extends SessionStore & ExpirySweep>(
  name: string,
  harness: StoreHarness<S>,
): void {
  describe(`ExpirySweep contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: S;
    beforeEach(() => {
      store = current();
    });

    it('deleteExpired deletes exactly the dead records and counts them', async () => {
      const now = Date.now();
      const live = record({ createdAt: now, idleExpiresAt: now + 30 * MINUTE });
      const touched = record({ createdAt: now - 40 * MINUTE, idleExpiresAt: now + 20 * MINUTE });
      const dead1 = record({ createdAt: now - 40 * MINUTE, idleExpiresAt: now + 1_000 });
      const dead2 = record({
        userId: 'user-2',
        createdAt: now - 40 * MINUTE,
        idleExpiresAt: now + 2_000,
      });
      for (const r of [live, touched, dead1, dead2]) await store.create(r);
      // The touched record was about to die; its new deadline must keep it.
      await store.touch(touched.id, now, now + 30 * MINUTE);
      expect(await store.deleteExpired(now + 5_000)).toBe(2);
      expect(await store.get(dead1.id)).toBeNull();
      expect(await store.get(dead2.id)).toBeNull();
      expect((await store.get(live.id))?.id).toBe(live.id);
      expect((await store.get(touched.id))?.id).toBe(touched.id);
      expect(await store.deleteExpired(now + 5_000)).toBe(0);
      if (hasCapability(store, 'session index')) {
        expect(await store.listByUser('user-2', now)).toEqual([]);
      }
    });
  });
}
