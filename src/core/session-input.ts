// What a new session (or a rotation) is given by the app, checked or clipped before it is stored.

import { InvalidInputError } from './errors.js';
import { type AssuranceLevel, AUTH_METHODS, type AuthMethod } from './store.js';

const MAX_USER_ID = 1024;
const MAX_USER_AGENT = 512;
const MAX_IP = 64;

export const NO_METHODS: readonly AuthMethod[] = Object.freeze([]);

export function checkUserId(userId: string): string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_USER_ID) {
    throw new InvalidInputError(
      `userId: must be a non-empty string of at most ${MAX_USER_ID} characters`,
    );
  }
  return userId;
}

export function checkAal(aal: AssuranceLevel): AssuranceLevel {
  if (aal !== 1 && aal !== 2) throw new InvalidInputError('aal: must be 1 or 2');
  return aal;
}

/** The methods, each once, frozen. */
export function checkAmr(amr: readonly AuthMethod[]): readonly AuthMethod[] {
  if (!Array.isArray(amr) || !amr.every((method) => AUTH_METHODS.includes(method))) {
    throw new InvalidInputError(`amr: must be a list of ${AUTH_METHODS.join(', ')}`);
  }
  return Object.freeze([...new Set(amr)]);
}

/** Metadata is kept, not trusted: an absent or empty value is null, a long one is cut. */
export const clipIp = (ip: string | null | undefined): string | null => clip(ip, MAX_IP);
export const clipUserAgent = (userAgent: string | null | undefined): string | null =>
  clip(userAgent, MAX_USER_AGENT);

function clip(value: string | null | undefined, max: number): string | null {
  if (typeof value !== 'string' || value.length === 0) return null;
  return value.length > max ? value.slice(0, max) : value;
}
