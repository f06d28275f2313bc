import type { ThrottleDecision, ThrottleRule } from '../core/store.js';

/** One key's counting window as a store keeps it. */
export interface AttemptWindow {
  readonly count: number;
  readonly windowEnd: number;
  readonly nextAllowedAt: number;
}

/**
 * The {@link ThrottleStore.consumeAttempt} algorithm for stores that can run code inside their
 * atomic step (memory, SQLite): gives the decision and the window to save (null: save nothing).
 */
export function consumeFrom(
  current: AttemptWindow | null,
  now: number,
  rule: ThrottleRule,
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
  const delay =
    count < rule.freeAttempts
      ? 0
      : Math.min(rule.baseDelayMs * 2 ** (count - rule.freeAttempts), rule.maxDelayMs);
  const save = {
    count,
    windowEnd: window?.windowEnd ?? now + rule.windowMs,
    nextAllowedAt: now + delay,
  };
  return { decision: { allowed: true, count, retryAt: now }, save };
}
