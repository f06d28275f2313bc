import * as crypto from 'node:crypto';

/** 32 random bytes as base64url: 43 characters, 256 bits. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/**
 * One-shot `crypto.hash` (Node 20.12+, 21.7+): no Hash object per call, about 2.5x faster than
 * `createHash(...).update(...).digest(...)` on a 43-character token. Older Node falls back.
 */
const oneShotHash = (
  crypto as { hash?: (algorithm: string, data: string, encoding: 'base64url') => string }
).hash;

/** A fresh session token from the CSPRNG. Only ever sent to the cookie writer. */
export function generateToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** The store key of a token: SHA-256, base64url. A leaked store cannot be replayed as cookies. */
export function sessionIdOf(token: string): string {
  return oneShotHash
    ? oneShotHash('sha256', token, 'base64url')
    : crypto.createHash('sha256').update(token).digest('base64url');
}

/** True when `value` has the exact shape of a token we issue; anything else is never looked up. */
export function isWellFormedToken(value: string): boolean {
  return TOKEN.test(value);
}
