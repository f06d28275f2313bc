import { ConfigError } from './errors.js';

/** Milliseconds, or a string such as `"500ms"`, `"2s"`, `"30m"`, `"12h"`, `"7d"`. */
export type Duration = number | `${number}${DurationUnit}`;
type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<DurationUnit, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses a {@link Duration} into whole milliseconds; throws {@link ConfigError} naming `label`. */
export function parseDuration(value: unknown, label: string): number {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else if (typeof value === 'string') {
    const match = DURATION.exec(value.trim());
    if (!match) {
      throw new ConfigError(
        `${label}: "${value}" is not a duration (use milliseconds or a number with ms, s, m, h or d, like "30m")`,
      );
    }
    ms = Number(match[1]) * UNIT_MS[match[2] as DurationUnit];
  } else {
    throw new ConfigError(`${label}: expected a duration, got ${typeof value}`);
  }
  if (!Number.isFinite(ms) || ms < 0) {
    throw new ConfigError(
      `${label}: must be a finite, non-negative duration, got ${String(value)}`,
    );
  }
  return Math.round(ms);
}
