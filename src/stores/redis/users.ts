import type { UserStore } from '../../core/capabilities.js';
import type { UserRecord } from '../../core/store.js';
import {
  USER_BY_KEY,
  USER_CREATE,
  USER_DELETE,
  USER_LIST,
  USER_UPDATE,
} from './account-scripts.js';
import type { Keyspace } from './connection.js';
import { factorsKey } from './factors.js';
import { pairs, userFrom } from './records.js';

/** Accounts, all in the `{users}` slot: `id:<id>` (hash), `key:<usernameKey>` → id, `all` (by createdAt). */
export class RedisUsers implements UserStore {
  constructor(private readonly redis: Keyspace) {}

  async createUser(user: UserRecord): Promise<boolean> {
    const created = await this.redis.run(
      USER_CREATE,
      [this.userKey(user.id), this.redis.key(`{users}:key:${user.usernameKey}`), this.allKey()],
      [
        user.id,
        user.username,
        user.usernameKey,
        user.passwordHash,
        String(user.createdAt),
        user.disabled ? '1' : '0',
      ],
    );
    return created === 1;
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    const redis = await this.redis.connected();
    return userFrom(await redis.hGetAll(this.userKey(id)));
  }

  async findUserByKey(usernameKey: string): Promise<UserRecord | null> {
    const reply = await this.redis.run(
      USER_BY_KEY,
      [this.redis.key(`{users}:key:${usernameKey}`)],
      [this.redis.key('{users}:id:')],
    );
    return userFrom(pairs(reply));
  }

  async listUsers(): Promise<UserRecord[]> {
    const reply = (await this.redis.run(
      USER_LIST,
      [this.allKey()],
      [this.redis.key('{users}:id:')],
    )) as unknown[];
    return reply.map((fields) => userFrom(pairs(fields))).filter((u) => u !== null);
  }

  async updateUser(
    id: string,
    changes: { passwordHash?: string; disabled?: boolean },
  ): Promise<boolean> {
    const disabled = changes.disabled === undefined ? '' : changes.disabled ? '1' : '0';
    const updated = await this.redis.run(
      USER_UPDATE,
      [this.userKey(id)],
      [changes.passwordHash ?? '', disabled],
    );
    return updated === 1;
  }

  async deleteUser(id: string): Promise<boolean> {
    const deleted = await this.redis.run(
      USER_DELETE,
      [this.userKey(id), this.allKey(), factorsKey(this.redis, id)],
      [id, this.redis.key('{users}:key:')],
    );
    return deleted === 1;
  }

  private userKey(id: string): string {
    return this.redis.key(`{users}:id:${id}`);
  }

  private allKey(): string {
    return this.redis.key('{users}:all');
  }
}
