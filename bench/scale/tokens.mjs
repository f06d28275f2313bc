/** Tokens and session records made the way src/core/token.ts and sessions.ts make them. */
import { createHash, randomBytes } from 'node:crypto';

/** SHA-256 of the token, base64url: the store key (same formula as src/core/token.ts). */
export function sessionIdOf(/** @type {string} */ token) {
  return createHash('sha256').update(token).digest('base64url');
}

/** `n` fresh 32-byte base64url tokens. */
export function makeTokens(/** @type {number} */ n) {
  const tokens = new Array(n);
  for (let i = 0; i < n; i++) tokens[i] = randomBytes(32).toString('base64url');
  return tokens;
}

/** A 110-byte user agent, as a current desktop browser sends. */
export const USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.67 Safari/537.36';

/**
 * A live realistic record like `Sessions.create` writes for user `i` (one session per user: the
 * worst case for per-user indexes): a 110-byte user agent, an IPv4 address, a user snapshot of id
 * and name.
 * @param {string} token
 * @param {number} i
 * @param {number} now
 */
export function recordFor(token, i, now) {
  return {
    id: sessionIdOf(token),
    userId: `user-${i}`,
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: now + 30 * 60_000,
    absoluteExpiresAt: now + 12 * 3_600_000,
    authenticatedAt: now,
    aal: 1,
    amr: [],
    ip: `203.0.${(i >> 8) & 255}.${i & 255}`,
    userAgent: USER_AGENT,
    user: { id: `user-${i}`, name: `User ${i}` },
    data: {},
  };
}

/** p50 / p99 / max in ms of `validate(token)` for `samples` random tokens, one at a time. */
export async function timeValidations(
  /** @type {{ validate(token: string): Promise<{ session: unknown, reason: string | null }> }} */ latchkey,
  /** @type {string[]} */ tokens,
  /** @type {number} */ samples,
) {
  const times = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const token = tokens[Math.floor(Math.random() * tokens.length)];
    const start = process.hrtime.bigint();
    const result = await latchkey.validate(token);
    times[i] = Number(process.hrtime.bigint() - start) / 1e6;
    if (!result.session) throw new Error(`validation failed: ${result.reason}`);
  }
  times.sort();
  const at = (/** @type {number} */ q) =>
    Math.round(times[Math.floor(q * (samples - 1))] * 1000) / 1000;
  return { samples, p50: at(0.5), p99: at(0.99), max: at(1) };
}
