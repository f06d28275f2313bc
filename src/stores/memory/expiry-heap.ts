/**
 * Binary min-heap of (time, slot) in typed arrays, with lazy deletion: an entry goes stale when its
 * slot is touched, freed or reused, and the owner skips stale entries when it pops them.
 */
export class ExpiryHeap {
  private times = new Float64Array(1024);
  private slots = new Int32Array(1024);
  size = 0;

  peekTime(): number | undefined {
    return this.size > 0 ? this.times[0] : undefined;
  }

  push(time: number, slot: number): void {
    if (this.size === this.times.length) {
      const times = new Float64Array(this.size * 2);
      times.set(this.times);
      this.times = times;
      const slots = new Int32Array(this.size * 2);
      slots.set(this.slots);
      this.slots = slots;
    }
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.times[parent] as number) <= time) break;
      this.times[i] = this.times[parent] as number;
      this.slots[i] = this.slots[parent] as number;
      i = parent;
    }
    this.times[i] = time;
    this.slots[i] = slot;
  }

  /** Removes the top entry and gives its slot; only call when `size > 0`. */
  pop(): number {
    const top = this.slots[0] as number;
    const n = --this.size;
    if (n > 0) {
      const time = this.times[n] as number;
      const slot = this.slots[n] as number;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child =
          right < n && (this.times[right] as number) < (this.times[left] as number) ? right : left;
        if ((this.times[child] as number) >= time) break;
        this.times[i] = this.times[child] as number;
        this.slots[i] = this.slots[child] as number;
        i = child;
      }
      this.times[i] = time;
      this.slots[i] = slot;
    }
    return top;
  }

  clear(): void {
    this.times = new Float64Array(1024);
    this.slots = new Int32Array(1024);
    this.size = 0;
  }
}
