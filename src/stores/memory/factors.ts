import type { FactorKind, FactorRecord } from '../../core/store.js';

/** The second factors of the memory store, by user and then id. Synchronous, so atomic. */
export class MemoryFactors {
  private readonly byUser = new Map<string, Map<string, FactorRecord>>();

  create(factor: FactorRecord): void {
    let factors = this.byUser.get(factor.userId);
    if (!factors) {
      factors = new Map();
      this.byUser.set(factor.userId, factors);
    }
    factors.set(factor.id, factor);
  }

  /** Oldest first: by `createdAt`, then id. */
  list(userId: string): FactorRecord[] {
    const factors = [...(this.byUser.get(userId)?.values() ?? [])];
    return factors.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  update(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): boolean {
    const factor = this.byUser.get(userId)?.get(id);
    if (!factor) return false;
    this.create({
      ...factor,
      name: changes.name ?? factor.name,
      confirmed: changes.confirmed ?? factor.confirmed,
    });
    return true;
  }

  advanceCounter(userId: string, id: string, counter: number, now: number): boolean {
    const factor = this.byUser.get(userId)?.get(id);
    if (!factor || !(factor.counter < counter)) return false;
    this.create({ ...factor, counter, lastUsedAt: now });
    return true;
  }

  delete(userId: string, id: string): boolean {
    const factors = this.byUser.get(userId);
    if (!factors?.delete(id)) return false;
    if (factors.size === 0) this.byUser.delete(userId);
    return true;
  }

  /** Deletes the user's factors, of `kind` only when given; gives how many. */
  deleteByUser(userId: string, kind?: FactorKind): number {
    const factors = this.byUser.get(userId);
    if (!factors) return 0;
    let count = 0;
    for (const [id, factor] of factors) {
      if (kind === undefined || factor.kind === kind) {
        factors.delete(id);
        count++;
      }
    }
    if (factors.size === 0) this.byUser.delete(userId);
    return count;
  }

  clear(): void {
    this.byUser.clear();
  }
}
