/** A JSON value: what a session may carry in `user` and `data`. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

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
  readonly ip: string | null;
  readonly userAgent: string | null;
  /** Small snapshot of the user chosen by the app, so a request needs no user lookup. */
  readonly user: JsonObject;
  /** Small app data: set at creation, changed only through {@link SessionStore.updateData}. */
  readonly data: JsonObject;
}

/** A top-level change to a session's `data`, applied by {@link SessionStore.updateData}. */
export interface DataChange {
  /** Top-level keys to set, each replacing any value it had (never merged deeper). */
  readonly set: JsonObject;
  /** Top-level keys to remove; absent keys are ignored. Never overlaps `set`. */
  readonly remove: readonly string[];
  /**
   * Bound on the merged `data`, in bytes of JSON as the store keeps it (about
   * `JSON.stringify(data)`; see {@link SessionStore.updateData}).
   */
  readonly maxBytes: number;
}

/** What {@link SessionStore.updateData} did. */
export type DataUpdate = 'updated' | 'missing' | 'too_large';

/** Cap applied atomically by {@link SessionStore.create}. */
export interface SessionCap {
  /** Live sessions a user may hold, including the new one. */
  readonly max: number;
  /** `evict-oldest` deletes the oldest live sessions to make room; `reject` creates nothing. */
  readonly policy: 'evict-oldest' | 'reject';
}

export interface CreateResult {
  /** False only when the cap is reached under the `reject` policy. */
  readonly created: boolean;
  /** Ids of sessions deleted to make room (`evict-oldest`). */
  readonly evicted: readonly string[];
}

/**
 * Where sessions live. A store knows nothing of cookies, tokens or policy.
 *
 * Contract, for every method:
 * - a missing id is not an error: `get` gives `null`, `touch`/`delete` do nothing;
 * - a rejected promise means the store could not answer (I/O, connection), never "not found";
 * - a record is alive while `now < idleExpiresAt` (the core keeps `idleExpiresAt <= absoluteExpiresAt`);
 *   a store may drop dead records at any time (TTL, sweeps) but must not drop live ones.
 */
export interface SessionStore {
  /**
   * Inserts `record`. With `cap`, counts the user's live sessions (alive at `record.createdAt`) and
   * applies the policy in the same atomic step, so parallel creates for one user never exceed it.
   */
  create(record: SessionRecord, cap?: SessionCap): Promise<CreateResult>;
  /** The record as stored, even if it is past its expiry (the core decides and deletes), or `null`. */
  get(id: string): Promise<SessionRecord | null>;
  /** Moves the sliding deadline. Never re-creates a deleted record. */
  touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void>;
  /**
   * In ONE atomic step, sets the keys of `change.set` and removes the keys of `change.remove` in
   * the record's `data` (top level only; other keys are kept as they are), so parallel updates of
   * different keys, from any number of processes, never lose one another. Never changes any other
   * field (expiry, `lastSeenAt`, …) and never re-creates a deleted record: `missing` when there is
   * no record (`get` would give null), writing nothing.
   *
   * `too_large`, writing nothing, when the merged `data` would measure more than
   * `change.maxBytes` AND more than it did before (a change that does not grow `data` is never
   * refused). The measure is the length in UTF-8 bytes of the JSON the store keeps, checked in
   * the same atomic step: exactly `JSON.stringify(data)` for memory and SQLite; PostgreSQL counts
   * jsonb's text form (a space after each `:` and `,`), so it refuses a little earlier; Redis,
   * which keeps one hash field per key, counts `{"key":value,…}` with keys unescaped.
   */
  updateData(id: string, change: DataChange): Promise<DataUpdate>;
  /** Deletes one record; true when it existed. */
  delete(id: string): Promise<boolean>;
  /** The user's records alive at `now`, oldest first. */
  listByUser(userId: string, now: number): Promise<SessionRecord[]>;
  /** Deletes all of the user's records except `exceptId`; gives how many were deleted. */
  deleteByUser(userId: string, exceptId?: string): Promise<number>;
  /** Deletes every record dead at `now`; gives how many. */
  deleteExpired(now: number): Promise<number>;
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

/**
 * Where accounts live, for apps that let latchkey keep them. Same failure rule as
 * {@link SessionStore}: `null`/`false` for "no such user", a rejection only for outages.
 */
export interface UserStore {
  /** Inserts a user; false, writing nothing, when `usernameKey` is taken (atomically). */
  createUser(user: UserRecord): Promise<boolean>;
  findUserById(id: string): Promise<UserRecord | null>;
  findUserByKey(usernameKey: string): Promise<UserRecord | null>;
  /** Every user, oldest first. */
  listUsers(): Promise<UserRecord[]>;
  /** Changes the hash and/or the disabled flag; false when there is no such user. */
  updateUser(id: string, changes: { passwordHash?: string; disabled?: boolean }): Promise<boolean>;
  deleteUser(id: string): Promise<boolean>;
}

/** How attempts on one key (an account or an IP) are limited. */
export interface ThrottleRule {
  /** Length of the counting window, from the window's first attempt. */
  readonly windowMs: number;
  /** Attempts allowed per window. */
  readonly limit: number;
  /** Attempts allowed back to back before delays start. */
  readonly freeAttempts: number;
  /** Delay after the first attempt past `freeAttempts`; doubles with each further attempt. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface ThrottleDecision {
  readonly allowed: boolean;
  /** Attempts counted in the current window, this one included when allowed. */
  readonly count: number;
  /** When refused: the earliest time another attempt can be allowed. */
  readonly retryAt: number;
}

/** Attempt counters kept in the store, so limits hold across processes. */
export interface ThrottleStore {
  /**
   * In one atomic step: if `key` has a window that has not ended (`now < windowEnd`) and either
   * holds `limit` attempts or `now < nextAllowedAt`, refuse without counting
   * (`retryAt` = the later of `nextAllowedAt` and, at the limit, the window's end). Otherwise count
   * the attempt (starting a new window `[now, now + windowMs)` if none is running) and set
   * `nextAllowedAt = count < freeAttempts ? now : now + min(baseDelayMs · 2^(count − freeAttempts), maxDelayMs)`.
   * Parallel calls on one key never count past `limit`.
   */
  consumeAttempt(key: string, now: number, rule: ThrottleRule): Promise<ThrottleDecision>;
  /** Forgets a key's window (after a successful login). */
  resetAttempts(key: string): Promise<void>;
  /** Deletes windows that ended at or before `now`; gives how many. */
  deleteExpiredAttempts(now: number): Promise<number>;
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

/** Remember-me tokens. Same failure rule as {@link SessionStore}. */
export interface RememberStore {
  createRemember(record: RememberRecord): Promise<void>;
  /** The record as stored (replaced or expired included), or null. */
  findRemember(selector: string): Promise<RememberRecord | null>;
  /**
   * In one atomic step: if `selector` exists and is not yet replaced, mark it replaced by
   * `successor.selector` at `now` and insert `successor`; give true. Otherwise write nothing and
   * give false (another request rotated it first).
   */
  rotateRemember(selector: string, successor: RememberRecord, now: number): Promise<boolean>;
  deleteRemember(selector: string): Promise<boolean>;
  /** Deletes all of a user's remember tokens; gives how many. */
  deleteRememberByUser(userId: string): Promise<number>;
  /** Deletes tokens with `expiresAt <= now`; gives how many. */
  deleteExpiredRemember(now: number): Promise<number>;
}

/** A store module that keeps everything latchkey's server needs over one connection. */
export type LatchkeyStore = SessionStore & UserStore & ThrottleStore & RememberStore;
