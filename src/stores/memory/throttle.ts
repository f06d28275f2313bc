import type { AttemptRule, ThrottleDecision } from '../../core/capabilities.js';
import { type AttemptWindow, consumeFrom } from '../throttle-window.js';

/** The attempt windows of the memory store, one per key. Synchronous, so atomic. */
export class MemoryThrottle {
  private readonly windows = new Map<string, AttemptWindow>();

  consume(key: string, now: number, rule: AttemptRule): ThrottleDecision {
    const { decision, save } = consumeFrom(this.windows.get(key) ?? null, now, rule);
    if (save) this.windows.set(key, save);
    return decision;
  }

  reset(key: string): void {
    this.windows.delete(key);
  }

  deleteExpired(now: number): number {
    let count = 0;
    for (const [key, window] of this.windows) {
      if (window.windowEnd <= now && this.windows.delete(key)) count++;
    }
    return count;
  }

  clear(): void {
    this.windows.clear();
  }
}
