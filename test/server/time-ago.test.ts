import { describe, expect, it } from 'vitest';
import { timeAgo } from '../../src/server/time-ago.js';

const NOW = Date.UTC(2026, 11, 2, 14, 0, 0);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe('timeAgo', () => {
  it.each([
    [0, 'just now'],
    [-59 * SECOND, 'just now'],
    [59 * SECOND, 'just now'],
    [-MINUTE, '1 minute ago'],
    [-2 * MINUTE + 1, '1 minute ago'],
    [-5 * MINUTE, '5 minutes ago'],
    [-HOUR + 1, '59 minutes ago'],
    [-HOUR, '1 hour ago'],
    [-2 * HOUR, '2 hours ago'],
    [-DAY + 1, '23 hours ago'],
    [-DAY, 'yesterday'],
    [-2 * DAY + 1, 'yesterday'],
    [-2 * DAY, '2 days ago'],
    [-3 * DAY, '3 days ago'],
    [-7 * DAY + 1, '6 days ago'],
    [5 * MINUTE, 'in 5 minutes'],
    [MINUTE, 'in 1 minute'],
    [3 * HOUR, 'in 3 hours'],
    [DAY, 'tomorrow'],
  ])('%i ms from now is "%s"', (offset, text) => {
    expect(timeAgo(NOW + offset, NOW)).toBe(text);
  });

  it('gives a date (UTC) from a week away', () => {
    expect(timeAgo(NOW - 7 * DAY, NOW)).toBe('on 25 Nov 2026');
    expect(timeAgo(Date.UTC(2025, 0, 31, 23, 59), NOW)).toBe('on 31 Jan 2025');
    expect(timeAgo(NOW + 30 * DAY, NOW)).toBe('on 1 Jan 2027');
  });

  it('does not throw on a time no date can hold', () => {
    expect(timeAgo(Number.NaN, NOW)).toBe('at an unknown time');
    expect(timeAgo(9e15, NOW)).toBe('at an unknown time');
    expect(timeAgo(NOW, Number.POSITIVE_INFINITY)).toBe('at an unknown time');
  });
});
