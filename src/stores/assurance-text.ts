// A session's `aal`/`amr` as the text stores keep: the level as 1 or 2, the methods as their
// names joined by spaces ("pwd otp mfa"; "" for none). A record from before levels has neither
// and reads as level 1 with no methods.

import { type AssuranceLevel, AUTH_METHODS, type AuthMethod } from '../core/store.js';

const NONE: readonly AuthMethod[] = Object.freeze([]);

/** Every method list read so far, frozen and shared: a store holds a handful of distinct ones. */
const lists = new Map<string, readonly AuthMethod[]>([['', NONE]]);

export const amrText = (amr: readonly AuthMethod[]): string => amr.join(' ');

/** The methods `text` names, or null when it names one latchkey does not know (undecodable). */
export function amrFrom(text: string | undefined): readonly AuthMethod[] | null {
  if (text === undefined) return NONE;
  const known = lists.get(text);
  if (known) return known;
  const names = text.split(' ');
  if (!names.every((name) => (AUTH_METHODS as readonly string[]).includes(name))) return null;
  const list = Object.freeze(names as AuthMethod[]);
  // Bounded: a store holding many distinct (hostile) lists must not grow this without end.
  if (lists.size < 1_000) lists.set(text, list);
  return list;
}

/** An `amr` kept as a JSON list of names (absent: none), or null when not a list of known ones. */
export function amrFromList(value: unknown): readonly AuthMethod[] | null {
  if (value === undefined) return NONE;
  if (!Array.isArray(value) || !value.every((name) => typeof name === 'string')) return null;
  return value.some((name) => name.includes(' ')) ? null : amrFrom(value.join(' '));
}

/** The level `value` holds (a number or its text), 1 when absent, or null when it is neither 1 nor 2. */
export function aalFrom(value: unknown): AssuranceLevel | null {
  if (value === undefined || value === null) return 1;
  const level = Number(value);
  return level === 1 || level === 2 ? level : null;
}
