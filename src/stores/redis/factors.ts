import type { SecondFactorStore } from '../../core/capabilities.js';
import type { FactorKind, FactorRecord } from '../../core/store.js';
import {
  FACTOR_ADVANCE,
  FACTOR_CREATE,
  FACTOR_DELETE,
  FACTOR_DELETE_KIND,
  FACTOR_UPDATE,
} from './account-scripts.js';
import type { Keyspace } from './connection.js';

const KINDS: readonly string[] = ['totp', 'passkey', 'recovery'];

/** The hash of `userId`'s second factors, in the users' slot (see account-scripts.ts). */
export function factorsKey(redis: Keyspace, userId: string): string {
  return redis.key(`{users}:f:${userId}`);
}

/** Second factors: one hash per user, a few fields per factor (account-scripts.ts). */
export class RedisFactors implements SecondFactorStore {
  constructor(private readonly redis: Keyspace) {}

  async createFactor(factor: FactorRecord): Promise<void> {
    const { id } = factor;
    const fields = [
      id,
      factor.kind,
      `${id}:s`,
      factor.secret,
      `${id}:n`,
      factor.name,
      `${id}:k`,
      factor.confirmed ? '1' : '0',
      `${id}:t`,
      String(factor.createdAt),
      `${id}:c`,
      String(factor.counter),
    ];
    if (factor.lastUsedAt !== null) fields.push(`${id}:u`, String(factor.lastUsedAt));
    await this.redis.run(FACTOR_CREATE, [factorsKey(this.redis, factor.userId)], fields);
  }

  /** Oldest first; a factor whose fields do not decode is left out. */
  async listFactors(userId: string): Promise<FactorRecord[]> {
    const redis = await this.redis.connected();
    const reply: unknown = await redis.hGetAll(factorsKey(this.redis, userId));
    if (typeof reply !== 'object' || reply === null) return [];
    const fields = reply as Record<string, string>;
    const factors: FactorRecord[] = [];
    for (const [id, kind] of Object.entries(fields)) {
      if (id.includes(':') || !KINDS.includes(kind)) continue;
      const createdAt = Number(fields[`${id}:t`]);
      const counter = Number(fields[`${id}:c`]);
      const used = fields[`${id}:u`];
      const lastUsedAt = used === undefined ? null : Number(used);
      const secret = fields[`${id}:s`];
      const name = fields[`${id}:n`];
      if (secret === undefined || name === undefined) continue;
      if (![createdAt, counter, lastUsedAt ?? 0].every(Number.isFinite)) continue;
      factors.push({
        id,
        userId,
        kind: kind as FactorKind,
        name,
        secret,
        counter,
        confirmed: fields[`${id}:k`] === '1',
        createdAt,
        lastUsedAt,
      });
    }
    return factors.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  async updateFactor(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): Promise<boolean> {
    const updated = await this.redis.run(
      FACTOR_UPDATE,
      [factorsKey(this.redis, userId)],
      [id, changes.name === undefined ? '' : '1', changes.confirmed ? '1' : '', changes.name ?? ''],
    );
    return updated === 1;
  }

  async advanceFactorCounter(
    userId: string,
    id: string,
    counter: number,
    now: number,
  ): Promise<boolean> {
    const advanced = await this.redis.run(
      FACTOR_ADVANCE,
      [factorsKey(this.redis, userId)],
      [id, String(counter), String(now)],
    );
    return advanced === 1;
  }

  async deleteFactor(userId: string, id: string): Promise<boolean> {
    const deleted = await this.redis.run(FACTOR_DELETE, [factorsKey(this.redis, userId)], [id]);
    return deleted === 1;
  }

  async deleteFactors(userId: string, kind?: FactorKind): Promise<number> {
    const deleted = await this.redis.run(
      FACTOR_DELETE_KIND,
      [factorsKey(this.redis, userId)],
      [kind ?? ''],
    );
    return Number(deleted);
  }
}
