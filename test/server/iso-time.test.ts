import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/server/iso-time.js';

const LAST_FOUR_DIGIT_YEAR = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

describe('isoTime', () => {
  it.each([
    ['the epoch', 0],
    ['the last millisecond of a day', Date.UTC(2026, 11, 2, 23, 59, 59, 999)],
    ['a leap day', Date.UTC(2024, 1, 29, 12, 0, 0, 7)],
    ['the day after 28 February in a century year that is not leap', Date.UTC(2100, 2, 1)],
    ['a leap day in a year divisible by 400', Date.UTC(2000, 1, 29, 1, 2, 3, 45)],
    ['new year', Date.UTC(2027, 0, 1)],
    ['the last millisecond of year 9999', LAST_FOUR_DIGIT_YEAR],
  ])('writes %s exactly as toISOString', (_name, ms) => {
    expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('agrees with toISOString on every day from 1970 to 2200, at a varying time of day', () => {
    const DAY = 86_400_000;
    const mismatches: number[] = [];
    for (let day = 0; day < 230 * 366; day++) {
      const ms = day * DAY + ((day * 7_919_977) % DAY);
      if (isoTime(ms) !== new Date(ms).toISOString()) mismatches.push(ms);
    }
    expect(mismatches).toEqual([]);
  });

  it.each([
    ['before 1970', -1],
    ['after year 9999', LAST_FOUR_DIGIT_YEAR + 1],
    ['a fractional millisecond', 1_700_000_000_000.6],
  ])('leaves a time %s to Date, with its answer', (_name, ms) => {
    expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('throws like toISOString for a time that is not one', () => {
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
  });
});
