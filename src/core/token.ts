import { createHash, randomBytes } from 'node:crypto';

/** 32 random bytes as base64url: 43 characters, 256 bits. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** A fresh session token from the CSPRNG. Only ever sent to the cookie writer. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The store key of a token: SHA-256, base64url. A leaked store cannot be replayed as cookies. */
export function sessionIdOf(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** True when `value` has the exact shape of a token we issue; anything else is never looked up. */
export function isWellFormedToken(value: string): boolean {
  return TOKEN.test(value);
}
