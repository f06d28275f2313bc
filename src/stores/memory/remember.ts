import type { RememberRecord } from '../../core/store.js';

/** The remember-me tokens of the memory store, by selector. Synchronous, so atomic. */
export class MemoryRemember {
  private readonly bySelector = new Map<string, RememberRecord>();

  create(record: RememberRecord): void {
    this.bySelector.set(record.selector, record);
  }

  find(selector: string): RememberRecord | null {
    return this.bySelector.get(selector) ?? null;
  }

  rotate(selector: string, successor: RememberRecord, now: number): boolean {
    const current = this.bySelector.get(selector);
    if (!current || current.replacedBy !== null) return false;
    this.bySelector.set(selector, { ...current, replacedBy: successor.selector, replacedAt: now });
    this.bySelector.set(successor.selector, successor);
    return true;
  }

  delete(selector: string): boolean {
    return this.bySelector.delete(selector);
  }

  deleteByUser(userId: string): number {
    return this.deleteWhere((record) => record.userId === userId);
  }

  deleteExpired(now: number): number {
    return this.deleteWhere((record) => record.expiresAt <= now);
  }

  clear(): void {
    this.bySelector.clear();
  }

  private deleteWhere(matches: (record: RememberRecord) => boolean): number {
    let count = 0;
    for (const [selector, record] of this.bySelector) {
      if (matches(record) && this.bySelector.delete(selector)) count++;
    }
    return count;
  }
}
