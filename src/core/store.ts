/** A JSON value: what a session may carry in `user` and `data`. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * How the user behind a session proved who they are: the RFC 8176 values latchkey uses. `pwd` a
 * password, `otp` a one-time code (TOTP or a recovery code), `hwk` / `swk` a passkey whose key is
 * bound to one device / synced between devices, `mfa` more than one factor.
 */
export type AuthMethod = 'pwd' | 'otp' | 'hwk' | 'swk' | 'mfa';
export const AUTH_METHODS: readonly AuthMethod[] = Object.freeze([
  'pwd',
  'otp',
  'hwk',
  'swk',
  'mfa',
]);

/** NIST SP 800-63B authenticator assurance level: 1 for one factor, 2 for two. */
export type AssuranceLevel = 1 | 2;

/** One server-side session. Times are milliseconds since the epoch. */
export interface SessionRecord {
  /** SHA-256 of the token, base64url. Public: safe to show and to revoke by. */
  readonly id: string;
  readonly userId: string;
  readonly createdAt: number;
  /** Time of the last refresh (at most `touchInterval` behind the last request). */
  readonly lastSeenAt: number;
  /** Sliding deadline; never later than `absoluteExpiresAt`. */
  readonly idleExpiresAt: number;
  /** Fixed at creation; validation never moves it. */
  readonly absoluteExpiresAt: number;
  /** When the user last proved who they are (password, not remember-me). */
  readonly authenticatedAt: number;
  /**
   * Assurance level. A record written before levels existed reads as 1 (with an empty `amr`);
   * raising it always gives the session a new id.
   */
  readonly aal: AssuranceLevel;
  /** The methods behind `aal`, in the order they were used; empty when the app did not say. */
  readonly amr: readonly AuthMethod[];
  readonly ip: string | null;
  readonly userAgent: string | null;
  /** Small snapshot of the user chosen by the app, so a request needs no user lookup. */
  readonly user: JsonObject;
  /** Small app data: set at creation, changed only through {@link SessionStore.updateData}. */
  readonly data: JsonObject;
}

/**
 * The required port: where sessions live. A store knows nothing of cookies, tokens or policy, and
 * this is all the seed flow needs (log in, validate, slide, log out). Everything else a store may
 * offer is a named capability (`capabilities.ts`) that the engine checks for when it is built.
 *
 * Contract, for every method:
 * - a missing id is not an error: `get` gives `null`, `touch` does nothing, `delete` gives false;
 * - a record the store cannot decode (corrupt, tampered, of an unknown format) reads as `null`,
 *   exactly like a missing one: it is "no session", never an error and never a partial record;
 * - a rejected promise means the store could not answer (I/O, connection), never "not found";
 * - a record is alive while `now < idleExpiresAt` (the core keeps `idleExpiresAt <= absoluteExpiresAt`);
 *   a store may drop dead records at any time (TTL, sweeps, eviction) but must not drop live ones
 *   unless it says so in its README (a cache that evicts logs users out; it never logs one in).
 */
export interface SessionStore {
  /** Inserts `record` (its id is new: 256 random bits). */
  create(record: SessionRecord): Promise<void>;
  /** The record as stored, even if it is past its expiry (the core decides and deletes), or `null`. */
  get(id: string): Promise<SessionRecord | null>;
  /** Moves the sliding deadline. Never re-creates a deleted record. */
  touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void>;
  /** Deletes one record; true when it existed. */
  delete(id: string): Promise<boolean>;
  /** Releases what the store opened itself (never a client the app passed in). */
  close(): Promise<void>;
}

/** One account. `usernameKey` is what uniqueness and lookups use. */
export interface UserRecord {
  readonly id: string;
  /** As the user chose it, NFC-normalised (for display). */
  readonly username: string;
  /** NFC-normalised and case-folded: unique in the store. */
  readonly usernameKey: string;
  /** A PHC string (argon2id); never logged, never sent to a client. */
  readonly passwordHash: string;
  readonly createdAt: number;
  readonly disabled: boolean;
}

/** A remember-me token: the cookie holds `selector.validator`, the store only SHA-256(validator). */
export interface RememberRecord {
  /** Random, public lookup key. */
  readonly selector: string;
  /** SHA-256 of the validator, base64url. */
  readonly validatorHash: string;
  readonly userId: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Selector of the token that replaced this one, or null while it is current. */
  readonly replacedBy: string | null;
  /** When it was replaced (start of the grace window), or null. */
  readonly replacedAt: number | null;
}

/** What kind of second factor a {@link FactorRecord} holds. */
export type FactorKind = 'totp' | 'passkey' | 'recovery';

/**
 * One second factor of an account: a TOTP authenticator, a passkey, or one recovery code (ten
 * records for ten codes, so using one is deleting it).
 */
export interface FactorRecord {
  /** Random, public: names the factor in pages and APIs. */
  readonly id: string;
  readonly userId: string;
  readonly kind: FactorKind;
  /** The user's label ("Phone", "YubiKey"); empty for recovery codes. */
  readonly name: string;
  /**
   * Opaque to the store. TOTP: the secret, encrypted with the server key. Recovery code: SHA-256
   * of the code. Passkey: its credential id, public key and transports (JSON).
   */
  readonly secret: string;
  /**
   * Highest counter accepted so far, raised only through `advanceFactorCounter`: the last TOTP
   * time step used (so a code is never accepted twice), or a passkey's signature counter.
   */
  readonly counter: number;
  /** False while a TOTP enrolment waits for its first code; such a factor protects nothing yet. */
  readonly confirmed: boolean;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}
