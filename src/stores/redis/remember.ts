import type { RememberStore } from '../../core/capabilities.js';
import type { RememberRecord } from '../../core/store.js';
import {
  REMEMBER_CREATE,
  REMEMBER_DELETE,
  REMEMBER_DELETE_BY_USER,
  REMEMBER_ROTATE,
  REMEMBER_SWEEP,
} from './account-scripts.js';
import type { Keyspace } from './connection.js';
import { expireAtFor, rememberFields, rememberFrom } from './records.js';

/**
 * Remember-me tokens, all in the `{remember}` slot so a rotation writes two tokens atomically:
 * `t:<selector>` (hash), `u:<userId>` (the user's selectors), `expiries` (selector → expiresAt).
 */
export class RedisRemember implements RememberStore {
  constructor(private readonly redis: Keyspace) {}

  async createRemember(record: RememberRecord): Promise<void> {
    await this.redis.run(
      REMEMBER_CREATE,
      [this.tokenKey(record.selector), this.userSetKey(record.userId), this.expiriesKey()],
      [
        JSON.stringify(rememberFields(record)),
        String(record.expiresAt),
        expireAtFor(record.expiresAt),
        record.selector,
      ],
    );
  }

  async findRemember(selector: string): Promise<RememberRecord | null> {
    const redis = await this.redis.connected();
    return rememberFrom(await redis.hGetAll(this.tokenKey(selector)));
  }

  async rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean> {
    const rotated = await this.redis.run(
      REMEMBER_ROTATE,
      [
        this.tokenKey(selector),
        this.tokenKey(successor.selector),
        this.userSetKey(successor.userId),
        this.expiriesKey(),
      ],
      [
        successor.selector,
        String(now),
        JSON.stringify(rememberFields(successor)),
        String(successor.expiresAt),
        expireAtFor(successor.expiresAt),
      ],
    );
    return rotated === 1;
  }

  async deleteRemember(selector: string): Promise<boolean> {
    const deleted = await this.redis.run(
      REMEMBER_DELETE,
      [this.tokenKey(selector), this.expiriesKey()],
      [selector, this.redis.key('{remember}:u:')],
    );
    return deleted === 1;
  }

  async deleteRememberByUser(userId: string): Promise<number> {
    const deleted = await this.redis.run(
      REMEMBER_DELETE_BY_USER,
      [this.userSetKey(userId), this.expiriesKey()],
      [this.redis.key('{remember}:t:')],
    );
    return Number(deleted);
  }

  async deleteExpiredRemember(now: number): Promise<number> {
    return this.redis.sweep(
      REMEMBER_SWEEP,
      [this.expiriesKey()],
      [String(now), this.redis.key('{remember}:t:'), this.redis.key('{remember}:u:')],
    );
  }

  private tokenKey(selector: string): string {
    return this.redis.key(`{remember}:t:${selector}`);
  }

  private userSetKey(userId: string): string {
    return this.redis.key(`{remember}:u:${userId}`);
  }

  private expiriesKey(): string {
    return this.redis.key('{remember}:expiries');
  }
}
