import type { AttemptRule, ThrottleDecision, ThrottleStore } from '../../core/capabilities.js';
import { ATTEMPT_CONSUME, ATTEMPT_RESET, ATTEMPT_SWEEP } from './account-scripts.js';
import type { Keyspace } from './connection.js';
import { LINGER_MS } from './records.js';

/** Login-attempt windows, all in the `{throttle}` slot: `a:<key>` (hash), `ends` (key → window end). */
export class RedisThrottle implements ThrottleStore {
  constructor(private readonly redis: Keyspace) {}

  async consumeAttempt(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision> {
    const reply = await this.redis.run(
      ATTEMPT_CONSUME,
      [this.windowKey(key), this.endsKey()],
      [
        key,
        String(now),
        String(rule.windowMs),
        String(rule.limit),
        String(rule.freeAttempts),
        String(Date.now() + LINGER_MS),
        ...rule.delays.map(String),
      ],
    );
    const [allowed, count, retryAt] = reply as [number, number, string];
    return { allowed: allowed === 1, count, retryAt: Number(retryAt) };
  }

  async resetAttempts(key: string): Promise<void> {
    await this.redis.run(ATTEMPT_RESET, [this.windowKey(key), this.endsKey()], [key]);
  }

  async deleteExpiredAttempts(now: number): Promise<number> {
    return this.redis.sweep(
      ATTEMPT_SWEEP,
      [this.endsKey()],
      [String(now), this.redis.key('{throttle}:a:')],
    );
  }

  private windowKey(key: string): string {
    return this.redis.key(`{throttle}:a:${key}`);
  }

  private endsKey(): string {
    return this.redis.key('{throttle}:ends');
  }
}
