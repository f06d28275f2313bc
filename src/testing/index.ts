// latchkey/testing: the store contract, one suite per port and capability, for vitest. A store
// of your own proves itself with the very cases the shipped stores pass:
//
//   import { describeSessionStore } from 'latchkey/testing';
//   describeSessionStore('my store', { open: async () => new MyStore() });

import type { LatchkeyStore } from '../core/capabilities.js';
import { describeDataPatch } from './data-patch.js';
import { describeExpirySweep } from './expiry-sweep.js';
import type { StoreHarness } from './harness.js';
import { describeRememberStore } from './remember.js';
import { describeAccountFactors, describeSecondFactorStore } from './second-factors.js';
import { describeSessionIndex } from './session-index.js';
import { describeSessionStore } from './sessions.js';
import { describeThrottleStore } from './throttle.js';
import { describeUserStore } from './users.js';

export { describeDataPatch } from './data-patch.js';
export { describeExpirySweep } from './expiry-sweep.js';
export { type StoreHarness, useStore } from './harness.js';
export { describeOutage, type OutageHarness } from './outage.js';
export { canonical, record, T0 } from './records.js';
export { describeRememberStore } from './remember.js';
export { describeAccountFactors, describeSecondFactorStore, factor } from './second-factors.js';
export { describeSessionIndex } from './session-index.js';
export { describeSessionStore } from './sessions.js';
export { describeThrottleStore } from './throttle.js';
export { describeUserStore, user } from './users.js';
export {
  describeValidationCache,
  type ValidationCacheHarness,
  type ValidationCacheView,
} from './validation-cache.js';

/** Every suite, for a store that keeps all latchkey's server needs (as the shipped ones do). */
export function describeLatchkeyStore<S extends LatchkeyStore>(
  name: string,
  harness: StoreHarness<S>,
): void {
  describeSessionStore(name, harness);
  describeSessionIndex(name, harness);
  describeDataPatch(name, harness);
  describeExpirySweep(name, harness);
  describeUserStore(name, harness);
  describeThrottleStore(name, harness);
  describeRememberStore(name, harness);
  describeSecondFactorStore(name, harness);
  describeAccountFactors(name, harness);
}
