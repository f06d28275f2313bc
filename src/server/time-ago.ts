const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** From a week away on, a date says more than a count of days. */
const WEEK = 7 * DAY;

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const date = new Intl.DateTimeFormat('en-GB', {
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  timeZone: 'UTC',
});

/**
 * When `then` was, as seen at `now` (both milliseconds since the epoch): "just now",
 * "5 minutes ago", "2 hours ago", "yesterday", "3 days ago", "in 5 minutes", then
 * "on 3 Nov 2026" (UTC). Units count whole elapsed ones, so "yesterday" means 24 to 48 hours:
 * the server does not know the reader's time zone.
 */
export function timeAgo(then: number, now: number): string {
  // A corrupt time must not make the page fail: Intl throws on an invalid date.
  const at = new Date(then);
  if (Number.isNaN(at.getTime()) || !Number.isFinite(now)) return 'at an unknown time';
  const elapsed = then - now;
  const size = Math.abs(elapsed);
  const sign = elapsed < 0 ? -1 : 1;
  if (size < MINUTE) return 'just now';
  if (size < HOUR) return relative.format(sign * Math.floor(size / MINUTE), 'minute');
  if (size < DAY) return relative.format(sign * Math.floor(size / HOUR), 'hour');
  if (size < WEEK) return relative.format(sign * Math.floor(size / DAY), 'day');
  return `on ${date.format(at)}`;
}
