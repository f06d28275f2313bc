import { requireCapability } from './capabilities.js';
import type { EventListener } from './events.js';
import type { LatchkeyOptions, SecondFactorOptions } from './options.js';
import { Passkeys } from './passkeys.js';
import { PendingLogins } from './pending-login.js';
import { SecondFactors } from './second-factors.js';
import { SecretBox } from './secret-box.js';

/** The second-factor parts `options` ask for, or null. */
export function secondFactorsOf(
  options: LatchkeyOptions,
  now: () => number,
  emit: EventListener,
  allowUnprefixed: boolean,
): { factors: SecondFactors; pending: PendingLogins; passkeys: Passkeys | null } | null {
  const second: SecondFactorOptions | undefined = options.secondFactor;
  if (!second) return null;
  const store = requireCapability(second.store, 'second factors', 'secondFactor.store');
  const throttle =
    second.throttle ??
    options.throttle?.store ??
    requireCapability(second.store, 'throttle', 'secondFactor.throttle');
  const keys = Array.isArray(second.secretKey) ? second.secretKey : [second.secretKey];
  const box = new SecretBox(keys as readonly (string | Buffer)[], 'secondFactor.secretKey');
  const issuer = second.issuer ?? options.siteName ?? 'latchkey';
  return {
    factors: new SecondFactors(store, throttle, box, issuer, now, emit),
    pending: new PendingLogins(box, now, allowUnprefixed),
    passkeys: second.passkeys
      ? new Passkeys(store, throttle, box, second.passkeys, issuer, now, emit, allowUnprefixed)
      : null,
  };
}
