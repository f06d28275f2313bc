/**
 * Each user's slots, in the order they were added. A user with one session (the usual case) costs
 * a number in the map, not an array.
 */
export class UserIndex {
  private readonly slots = new Map<string, number | number[]>();

  /** The user's slots; the array may be the index's own, so never change it. */
  of(userId: string): readonly number[] {
    const held = this.slots.get(userId);
    if (held === undefined) return [];
    return typeof held === 'number' ? [held] : held;
  }

  /** One of the user's slots, or -1: the owner reads the user id string kept there, to share it. */
  anyOf(userId: string): number {
    const held = this.slots.get(userId);
    if (held === undefined) return -1;
    return typeof held === 'number' ? held : (held[0] as number);
  }

  add(userId: string, slot: number): void {
    const held = this.slots.get(userId);
    if (held === undefined) this.slots.set(userId, slot);
    else if (typeof held === 'number') this.slots.set(userId, [held, slot]);
    else held.push(slot);
  }

  remove(userId: string, slot: number): void {
    const held = this.slots.get(userId);
    if (typeof held === 'number') this.slots.delete(userId);
    else if (held !== undefined) {
      held.splice(held.indexOf(slot), 1);
      if (held.length === 1) this.slots.set(userId, held[0] as number);
    }
  }

  /** Drops the user's entry at once (not slot by slot) and gives the slots it held. */
  take(userId: string): readonly number[] {
    const held = this.of(userId);
    this.slots.delete(userId);
    return held;
  }

  clear(): void {
    this.slots.clear();
  }
}
