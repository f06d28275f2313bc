import type { UserRecord } from '../../core/store.js';

/** The accounts of the memory store: by id, and id by `usernameKey`. Synchronous, so atomic. */
export class MemoryUsers {
  private readonly byId = new Map<string, UserRecord>();
  private readonly idByKey = new Map<string, string>();

  create(user: UserRecord): boolean {
    if (this.idByKey.has(user.usernameKey) || this.byId.has(user.id)) return false;
    this.byId.set(user.id, user);
    this.idByKey.set(user.usernameKey, user.id);
    return true;
  }

  findById(id: string): UserRecord | null {
    return this.byId.get(id) ?? null;
  }

  findByKey(usernameKey: string): UserRecord | null {
    const id = this.idByKey.get(usernameKey);
    return id === undefined ? null : (this.byId.get(id) ?? null);
  }

  /** Every user, oldest first. */
  list(): UserRecord[] {
    return [...this.byId.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  update(id: string, changes: { passwordHash?: string; disabled?: boolean }): boolean {
    const user = this.byId.get(id);
    if (!user) return false;
    this.byId.set(id, {
      ...user,
      passwordHash: changes.passwordHash ?? user.passwordHash,
      disabled: changes.disabled ?? user.disabled,
    });
    return true;
  }

  delete(id: string): boolean {
    const user = this.byId.get(id);
    if (!user) return false;
    this.byId.delete(id);
    this.idByKey.delete(user.usernameKey);
    return true;
  }

  clear(): void {
    this.byId.clear();
    this.idByKey.clear();
  }
}
