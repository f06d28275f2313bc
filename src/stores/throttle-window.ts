import type { AttemptRule, ThrottleDecision } from '../core/capabilities.js';

/** One key's counting window as a store keeps it. */
export interface AttemptWindow {
  readonly count: number;
  readonly windowEnd: number;
  readonly nextAllowedAt: number;
}

/**
 * {@link ThrottleStore.consumeAttempt} for stores that run JavaScript inside their atomic step
 * (memory, SQLite, a compare-and-swap loop): the decision, and the window to save (null: none).
 */
export function consumeFrom(
  current: AttemptWindow | null,
  now: number,
  rule: AttemptRule,
): { decision: ThrottleDecision; save: AttemptWindow | null } {
  const window = current && now < current.windowEnd ? current : null;
  if (window) {
    const atLimit = window.count >= rule.limit;
    if (atLimit || now < window.nextAllowedAt) {
      const retryAt = Math.max(window.nextAllowedAt, atLimit ? window.windowEnd : 0);
      return { decision: { allowed: false, count: window.count, retryAt }, save: null };
    }
  }
  const count = (window?.count ?? 0) + 1;
  const save = {
    count,
    windowEnd: window?.windowEnd ?? now + rule.windowMs,
    nextAllowedAt: now + waitAfter(count, rule),
  };
  return { decision: { allowed: true, count, retryAt: now }, save };
}

/** The wait the rule sets after the `count`-th counted attempt. */
export function waitAfter(count: number, rule: AttemptRule): number {
  if (count < rule.freeAttempts) return 0;
  return rule.delays[Math.min(count - rule.freeAttempts, rule.delays.length - 1)] ?? 0;
}
