import { CHUNK, CHUNK_BITS, CHUNK_MASK } from './chunks.js';

/** A session id as latchkey makes it (SHA-256, base64url, 43 characters) is kept as 32 bytes. */
const ID_LENGTH = 43;
const ID_BYTES = 32;
const ID_WORDS = ID_BYTES / 4;

/** base64url character code → its 6-bit value, or -1. */
const BASE64URL = new Int8Array(128).fill(-1);
for (const [i, c] of [
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
].entries()) {
  BASE64URL[c.charCodeAt(0)] = i;
}

/**
 * Session id ↔ slot. An id of the usual shape is kept as 8 words in chunked Int32Arrays and found
 * through an open-addressing table (linear probing, at most half full, no tombstones), so a million
 * ids cost no string each. Ids of any other shape (a store is usable with ids it did not make) go
 * in a Map.
 */
export class IdIndex {
  /** The 8 id words of each slot, in chunks of {@link CHUNK} slots. */
  private chunks: Int32Array[] = [];
  /** slot + 1, or 0 for empty. */
  private table = new Int32Array(2048);
  private entries = 0;
  private readonly others = new Map<string, number>();
  private readonly otherOf = new Map<number, string>();
  /** The words of the id last decoded. */
  private readonly probe = new Int32Array(ID_WORDS);
  private readonly seed = (Math.random() * 0x7fffffff) | 1;

  /** The slot holding `id`, or -1. */
  find(id: string): number {
    if (!this.decode(id)) return this.others.get(id) ?? -1;
    const { table, chunks, probe } = this;
    const mask = table.length - 1;
    for (let at = this.home(probe[0] as number) & mask; ; at = (at + 1) & mask) {
      const entry = table[at] as number;
      if (entry === 0) return -1;
      const words = chunks[(entry - 1) >>> CHUNK_BITS] as Int32Array;
      const base = ((entry - 1) & CHUNK_MASK) * ID_WORDS;
      if (
        words[base] === probe[0] &&
        words[base + 1] === probe[1] &&
        words[base + 2] === probe[2] &&
        words[base + 3] === probe[3] &&
        words[base + 4] === probe[4] &&
        words[base + 5] === probe[5] &&
        words[base + 6] === probe[6] &&
        words[base + 7] === probe[7]
      ) {
        return entry - 1;
      }
    }
  }

  /** Records that `slot` holds `id` (an id not held by any slot). */
  add(id: string, slot: number): void {
    if (!this.decode(id)) {
      this.others.set(id, slot);
      this.otherOf.set(slot, id);
      return;
    }
    while (slot >>> CHUNK_BITS >= this.chunks.length) {
      this.chunks.push(new Int32Array(CHUNK * ID_WORDS));
    }
    this.wordsOf(slot).set(this.probe, (slot & CHUNK_MASK) * ID_WORDS);
    if ((this.entries + 1) * 2 > this.table.length) this.grow();
    const mask = this.table.length - 1;
    let at = this.homeOf(slot) & mask;
    while (this.table[at] !== 0) at = (at + 1) & mask;
    this.table[at] = slot + 1;
    this.entries++;
  }

  /** Forgets the id of `slot` (a slot that holds one). */
  remove(slot: number): void {
    const other = this.otherOf.get(slot);
    if (other !== undefined) {
      this.others.delete(other);
      this.otherOf.delete(slot);
      return;
    }
    // Shift later entries of the probe run back into the hole, so lookups never need tombstones.
    const table = this.table;
    const mask = table.length - 1;
    let hole = this.homeOf(slot) & mask;
    while (table[hole] !== slot + 1) hole = (hole + 1) & mask;
    for (let at = (hole + 1) & mask; table[at] !== 0; at = (at + 1) & mask) {
      const entry = table[at] as number;
      const home = this.homeOf(entry - 1) & mask;
      // Move the entry into the hole unless its home lies cyclically in (hole, at].
      if ((at - home + table.length) % table.length >= (at - hole + table.length) % table.length) {
        table[hole] = entry;
        hole = at;
      }
    }
    table[hole] = 0;
    this.entries--;
  }

  /** The id string of a slot (rebuilt from its words for ids of the usual shape). */
  idOf(slot: number): string {
    const other = this.otherOf.get(slot);
    if (other !== undefined) return other;
    const bytes = Buffer.allocUnsafe(ID_BYTES);
    const words = this.wordsOf(slot);
    const base = (slot & CHUNK_MASK) * ID_WORDS;
    for (let i = 0; i < ID_WORDS; i++) bytes.writeInt32LE(words[base + i] as number, i * 4);
    return bytes.toString('base64url');
  }

  clear(): void {
    this.chunks = [];
    this.table = new Int32Array(2048);
    this.entries = 0;
    this.others.clear();
    this.otherOf.clear();
  }

  /**
   * Decodes a 43-character base64url id into `probe` (8 words). False for any other shape,
   * including a last character with stray low bits (two spellings of one id must not meet).
   */
  private decode(id: string): boolean {
    if (id.length !== ID_LENGTH) return false;
    const probe = this.probe;
    let word = 0;
    let bits = 0;
    let filled = 0;
    let byte = 0;
    for (let i = 0; i < ID_LENGTH; i++) {
      const code = id.charCodeAt(i);
      const value = code < 128 ? (BASE64URL[code] as number) : -1;
      if (value < 0) return false;
      byte = (byte << 6) | value;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        // Four bytes to a word, first byte lowest (idOf writes them back the same way).
        word |= ((byte >> bits) & 0xff) << ((filled & 3) * 8);
        byte &= (1 << bits) - 1;
        if ((++filled & 3) === 0) {
          probe[(filled >> 2) - 1] = word;
          word = 0;
        }
      }
    }
    return byte === 0;
  }

  /** Table position to start probing for an id whose first word is `word`. */
  private home(word: number): number {
    return Math.imul(word ^ this.seed, 0x9e3779b1) >>> 0;
  }

  /** Where the id of `slot` starts probing. */
  private homeOf(slot: number): number {
    return this.home(this.wordsOf(slot)[(slot & CHUNK_MASK) * ID_WORDS] as number);
  }

  private wordsOf(slot: number): Int32Array {
    return this.chunks[slot >>> CHUNK_BITS] as Int32Array;
  }

  private grow(): void {
    const old = this.table;
    this.table = new Int32Array(old.length * 2);
    const mask = this.table.length - 1;
    for (const entry of old) {
      if (entry === 0) continue;
      let at = this.homeOf(entry - 1) & mask;
      while (this.table[at] !== 0) at = (at + 1) & mask;
      this.table[at] = entry;
    }
  }
}
