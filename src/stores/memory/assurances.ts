import { InvalidInputError } from '../../core/errors.js';
import type { AssuranceLevel, AuthMethod } from '../../core/store.js';

/** Numbers fit in the per-slot Uint16Array column. */
const MAX_PAIRS = 0x10000;

/**
 * Each distinct `aal`/`amr` pair once, under a small number, so a session slot holds two bytes
 * instead of an array: a million sessions share a handful of pairs. Number 0 is the default
 * (level 1, no methods), so a zero-filled column reads as records written without a level.
 * Each `amr` is frozen and shared by every record that reads it.
 */
export class Assurances {
  private readonly numbers = new Map<string, number>();
  private readonly levels: AssuranceLevel[] = [];
  private readonly methods: (readonly AuthMethod[])[] = [];

  constructor() {
    this.numberOf(1, []);
  }

  numberOf(aal: AssuranceLevel, amr: readonly AuthMethod[]): number {
    const key = `${aal} ${amr.join(' ')}`;
    const known = this.numbers.get(key);
    if (known !== undefined) return known;
    const number = this.levels.length;
    // Only lists with repeated methods could get here: the core stores each method once.
    if (number === MAX_PAIRS) throw new InvalidInputError('amr: too many distinct method lists');
    this.numbers.set(key, number);
    this.levels.push(aal);
    this.methods.push(Object.freeze([...amr]));
    return number;
  }

  aalOf(number: number): AssuranceLevel {
    return this.levels[number] as AssuranceLevel;
  }

  amrOf(number: number): readonly AuthMethod[] {
    return this.methods[number] as readonly AuthMethod[];
  }
}
