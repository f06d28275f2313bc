import type { CredentialError } from './credentials.js';
import type { Unchanged } from './password-check.js';
import type { AssuranceLevel, AuthMethod, JsonObject, SessionRecord } from './store.js';

// What logins take and give: the types of `login.ts`, apart so that file holds the flows alone.

/** What a login or sign-up reads from untrusted input (a form or JSON body). */
export interface Credentials {
  readonly username?: unknown;
  readonly password?: unknown;
  /** `true` asks for a remember-me token (when configured); anything else does not. */
  readonly remember?: unknown;
}

/** The request a login comes from. */
export interface LoginContext {
  readonly ip?: string | null;
  readonly userAgent?: string | null;
  /** The request's `Cookie` header: any session it names is ended (no fixation). */
  readonly cookie?: string | null;
}

export interface StartedSession {
  readonly session: SessionRecord;
  /** Send every value as its own `Set-Cookie` header. */
  readonly setCookie: readonly string[];
}

/** Too many recent attempts on this account or from this IP; nothing was checked. */
export interface Throttled {
  readonly ok: false;
  readonly error: 'too_many_attempts';
  readonly retryAfterSeconds: number;
}

/** A second factor a pending login can be completed with. */
export type SecondFactorMethod = 'totp' | 'recovery' | 'passkey';

/**
 * The password was right and the account has a second factor: no session yet. `setCookie` starts
 * the pending login (5 minutes, this browser only); complete it with `completeLogin`.
 */
export interface SecondFactorRequired {
  readonly ok: false;
  readonly error: 'second_factor_required';
  readonly methods: readonly SecondFactorMethod[];
  readonly setCookie: readonly string[];
}

export type LoginResult =
  | (StartedSession & { readonly ok: true; readonly user: JsonObject })
  | SecondFactorRequired
  | {
      readonly ok: false;
      /**
       * `invalid_request`: a field is missing, not a string or oversize (decided before hashing).
       * `invalid_credentials`: unknown user, wrong password or disabled account, never told apart.
       */
      readonly error: 'invalid_credentials' | 'invalid_request';
    }
  | Throttled;

/**
 * A sensitive change may go ahead: `session` is the caller's session, rotated (with new cookies
 * in `setCookie`) when the password was just confirmed.
 */
export type Reauthentication =
  | { readonly ok: true; readonly session: SessionRecord; readonly setCookie: readonly string[] }
  | { readonly ok: false; readonly error: 'reauthentication_required' }
  | Throttled;

export type SignupResult =
  | (StartedSession & { readonly ok: true; readonly user: JsonObject })
  | {
      readonly ok: false;
      readonly error: CredentialError['code'];
      /** Safe to show the person signing up. */
      readonly message: string;
    }
  /** Too many recent sign-ups from this IP, or from everywhere; nothing was checked. */
  | Throttled;

/** An account whose credentials all checked out, about to be signed in. */
export interface VerifiedAccount {
  readonly userId: string;
  readonly user: JsonObject;
  /** The account's throttle key (see `usernameKey`). */
  readonly key: string;
  readonly unchanged: Unchanged;
}

/** How a login proved the user, and what it asked for. */
export interface LoginProof {
  readonly aal: AssuranceLevel;
  readonly amr: readonly AuthMethod[];
  readonly via: 'password' | 'second_factor' | 'passkey';
  /** Whether to issue a remember-me token (when configured). */
  readonly remember: boolean;
}
