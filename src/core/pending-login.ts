import { randomBytes } from 'node:crypto';
import { HostCookie } from './cookies.js';
import { InvalidInputError } from './errors.js';
import type { SecretBox } from './secret-box.js';
import type { JsonObject } from './store.js';

/** How long a correct password waits for its second factor. */
export const PENDING_LOGIN_MS = 5 * 60_000;
const AAD = 'latchkey pending login';
/** A sealed value must fit one cookie, with room for the rest of the header. */
const MAX_SEALED = 3500;

/** A password that was right, waiting for the account's second factor. */
export interface PendingLogin {
  readonly userId: string;
  /** The snapshot the session will carry. */
  readonly user: JsonObject;
  /** The account's throttle key (see `usernameKey`). */
  readonly key: string;
  /** When the password was checked. */
  readonly passwordAt: number;
  readonly expiresAt: number;
  /** Whether the login asked for a remember-me token. */
  readonly remember: boolean;
  /** Random: names this pending login (a passkey challenge is bound to it). */
  readonly nonce: string;
}

/**
 * The state between a correct password and the second factor. It is not a session and is worth
 * nothing on any route but the second step: it lives in its own cookie (`__Host-` host-only,
 * HttpOnly, SameSite=Strict, so bound to this browser), sealed with AES-256-GCM so the browser
 * can neither read nor change it, and lasts 5 minutes.
 */
export class PendingLogins {
  readonly cookie: HostCookie;

  constructor(
    private readonly box: SecretBox,
    private readonly now: () => number,
    allowUnprefixed: boolean,
  ) {
    this.cookie = new HostCookie(allowUnprefixed ? 'latchkey-2fa' : '__Host-latchkey-2fa', {
      allowUnprefixed,
    });
  }

  /** A `Set-Cookie` that starts a pending login; the pending state is given back too. */
  start(input: Omit<PendingLogin, 'expiresAt' | 'nonce' | 'passwordAt'>): {
    pending: PendingLogin;
    setCookie: string;
  } {
    const passwordAt = this.now();
    const pending: PendingLogin = {
      ...input,
      passwordAt,
      expiresAt: passwordAt + PENDING_LOGIN_MS,
      nonce: randomBytes(16).toString('base64url'),
    };
    const sealed = this.box.seal(JSON.stringify(pending), AAD);
    if (sealed.length > MAX_SEALED) {
      throw new InvalidInputError('user: too large a snapshot to wait for a second factor');
    }
    return { pending, setCookie: this.cookie.serialize(sealed, PENDING_LOGIN_MS / 1000) };
  }

  /** The live pending login the request's cookies carry, or null. */
  read(cookieHeader: string | null | undefined): PendingLogin | null {
    const value = this.cookie.read(cookieHeader).value;
    const text = value === null ? null : this.box.open(value, AAD);
    if (text === null) return null;
    const pending = parsePending(text);
    return pending && this.now() < pending.expiresAt ? pending : null;
  }
}

function parsePending(text: string): PendingLogin | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const pending = value as Record<string, unknown>;
  const ok =
    typeof pending.userId === 'string' &&
    typeof pending.key === 'string' &&
    typeof pending.nonce === 'string' &&
    typeof pending.passwordAt === 'number' &&
    typeof pending.expiresAt === 'number' &&
    typeof pending.remember === 'boolean' &&
    typeof pending.user === 'object' &&
    pending.user !== null &&
    !Array.isArray(pending.user);
  return ok ? (value as PendingLogin) : null;
}
