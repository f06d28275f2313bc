import { ConfigError } from './errors.js';
import type {
  FactorKind,
  FactorRecord,
  JsonObject,
  RememberRecord,
  SessionRecord,
  SessionStore,
  UserRecord,
} from './store.js';

// Named abilities a store may offer beyond the required SessionStore port. A store implements a
// capability whole or not at all; the engine checks for each one it needs when it is built, so a
// missing one is a ConfigError at start-up, never a failure at the first request.

/** A per-user index of sessions: list, revoke all, and a cap on how many a user holds. */
export interface SessionIndex {
  /**
   * Inserts `record` when its user has fewer than `max` sessions alive at `record.createdAt`, and
   * gives true; otherwise gives false and leaves no trace of `record` (a store may write it first
   * and take it back, as Redis Cluster must, but the cap is decided atomically). Parallel calls for
   * one user, from any number of processes, never leave more than `max` live sessions. (The core
   * decides what to do at the cap: evict the oldest and retry, or refuse.)
   */
  createCapped(record: SessionRecord, max: number): Promise<boolean>;
  /** The user's records alive at `now`, oldest first (by `createdAt`). */
  listByUser(userId: string, now: number): Promise<SessionRecord[]>;
  /**
   * Deletes all of the user's records except `exceptId`; gives how many were deleted. A session
   * whose `create` returned before this call started is always among them.
   */
  deleteByUser(userId: string, exceptId?: string): Promise<number>;
}

/**
 * Where a new session can be stored right now, for a store spread over servers that can be down
 * one at a time (Memcached): the engine draws tokens until the store accepts one's id.
 */
export interface SessionPlacement {
  /**
   * Whether a session with id `id` can be stored now: synchronous, no I/O. Must accept every id
   * when it cannot store any (the create then fails as an outage). Ids are never moved later:
   * a store refusing an id's server keeps looking for that id there.
   */
  acceptsSessionId(id: string): boolean;
}

/** A top-level change to a session's `data`, applied by {@link SessionDataPatch.updateData}. */
export interface DataChange {
  /** Top-level keys to set, each replacing any value it had (never merged deeper). */
  readonly set: JsonObject;
  /** Top-level keys to remove; absent keys are ignored. Never overlaps `set`. */
  readonly remove: readonly string[];
  /** Bound on the merged `data`, in UTF-8 bytes of its JSON (see {@link SessionDataPatch.updateData}). */
  readonly maxBytes: number;
}

/** What {@link SessionDataPatch.updateData} did. */
export type DataUpdate = 'updated' | 'missing' | 'too_large';

/** Atomic changes to one key of a session's `data`, without a read-modify-write race. */
export interface SessionDataPatch {
  /**
   * In ONE atomic step, sets the keys of `change.set` and removes the keys of `change.remove` in
   * the record's `data` (top level only; other keys are kept as they are), so parallel updates of
   * different keys, from any number of processes, never lose one another. Never changes any other
   * field (expiry, `lastSeenAt`, …) and never re-creates a deleted record: `missing`, writing
   * nothing, when `get` would give null.
   *
   * `too_large`, writing nothing, when the merged `data` would measure more than `change.maxBytes`
   * AND more than it did before (a change that does not grow `data` is never refused). The measure
   * is the UTF-8 length of the JSON the store keeps, checked in the same atomic step: exactly
   * `JSON.stringify(data)` where the store merges in JavaScript ({@link mergeData}); PostgreSQL
   * counts jsonb's text form (a space after each `:` and `,`), so it refuses a little earlier;
   * Redis, which keeps one hash field per key, counts `{"key":value,…}` with keys unescaped.
   */
  updateData(id: string, change: DataChange): Promise<DataUpdate>;
}

/** Deleting dead records in bulk, for stores whose records do not expire by themselves. */
export interface ExpirySweep {
  /** Deletes every record dead at `now` (sessions, and the other records the store keeps); gives how many sessions. */
  deleteExpired(now: number): Promise<number>;
}

/** A sweep that only one process runs at a time, among all sharing the store. */
export interface ExclusiveSweep {
  /** Runs `work` while holding the store-wide sweep lock; gives null, running nothing, when another process holds it. */
  sweepExclusive<T>(work: () => Promise<T>): Promise<T | null>;
}

export interface MigrationReport {
  /** Versions applied by this call, in order (empty when the schema was up to date). */
  readonly applied: readonly number[];
  readonly version: number;
}

/** A schema that the store brings up to date itself. */
export interface Migrations {
  /** Applies pending migrations (once, even with many processes at once) and reports them. */
  migrations(): Promise<MigrationReport>;
}

/**
 * Where accounts live, for apps that let latchkey keep them. Same failure rule as
 * {@link SessionStore}: `null`/`false` for "no such user", a rejection only for outages. Must be
 * durable: a store that may evict (Memcached, memory) loses accounts.
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

/**
 * How one key's attempts are counted, as the store sees it. The core derives it from its backoff
 * policy (`attemptRuleOf` in `throttle.ts`): the store only counts and looks the wait up.
 */
export interface AttemptRule {
  /** Length of the counting window, from the window's first attempt. */
  readonly windowMs: number;
  /** Attempts counted per window. */
  readonly limit: number;
  /** The first `freeAttempts - 1` counted attempts set no wait. */
  readonly freeAttempts: number;
  /**
   * Wait after the n-th counted attempt, for n >= freeAttempts: `delays[min(n - freeAttempts,
   * delays.length - 1)]` ms. Never empty.
   */
  readonly delays: readonly number[];
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
   * holds `rule.limit` attempts or `now < nextAllowedAt`, refuse without counting (`retryAt` = the
   * later of `nextAllowedAt` and, at the limit, the window's end). Otherwise count the attempt
   * (starting a new window `[now, now + windowMs)` if none is running) and set `nextAllowedAt` to
   * `now` plus the rule's wait for the new count. Parallel calls on one key never count past `limit`.
   */
  consumeAttempt(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision>;
  /** Forgets a key's window (after a successful login). */
  resetAttempts(key: string): Promise<void>;
  /** Deletes windows that ended at or before `now`; gives how many. */
  deleteExpiredAttempts(now: number): Promise<number>;
}

/** Remember-me tokens. Same failure rule as {@link SessionStore}; must be durable. */
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

/**
 * Second factors of accounts (TOTP, passkeys, recovery codes). Same failure rule as
 * {@link SessionStore}: `false`/`null` for "no such factor", a rejection only for outages. Must be
 * durable, like accounts. Every method is scoped to one user: a factor id of another user is
 * "no such factor".
 */
export interface SecondFactorStore {
  /** Inserts a factor (its id is new: 128 random bits or more). */
  createFactor(factor: FactorRecord): Promise<void>;
  /** The user's factors, oldest first (by `createdAt`, then id). */
  listFactors(userId: string): Promise<FactorRecord[]>;
  /** Renames and/or confirms a factor; false when there is no such factor. */
  updateFactor(
    userId: string,
    id: string,
    changes: { readonly name?: string; readonly confirmed?: true },
  ): Promise<boolean>;
  /**
   * In one atomic step: when the factor exists and its counter is below `counter`, sets the
   * counter to `counter` and `lastUsedAt` to `now`, and gives true; otherwise writes nothing and
   * gives false. Of parallel calls with one counter, from any number of processes, one wins.
   */
  advanceFactorCounter(userId: string, id: string, counter: number, now: number): Promise<boolean>;
  /**
   * Deletes one factor; true when it existed. Of parallel calls for one factor, exactly one gets
   * true (a recovery code is used once).
   */
  deleteFactor(userId: string, id: string): Promise<boolean>;
  /** Deletes the user's factors (of `kind` only, when given); gives how many. */
  deleteFactors(userId: string, kind?: FactorKind): Promise<number>;
}

/** A store that keeps everything latchkey's server needs (SQLite, PostgreSQL, Redis, memory). */
export type LatchkeyStore = SessionStore &
  SessionIndex &
  SessionDataPatch &
  ExpirySweep &
  UserStore &
  ThrottleStore &
  RememberStore &
  SecondFactorStore;

/** Every capability by name, with the methods that make it up. */
export const CAPABILITIES = {
  'session index': ['createCapped', 'listByUser', 'deleteByUser'],
  'data patch': ['updateData'],
  'session placement': ['acceptsSessionId'],
  'expiry sweep': ['deleteExpired'],
  'exclusive sweep': ['sweepExclusive'],
  migrations: ['migrations'],
  users: ['createUser', 'findUserById', 'findUserByKey', 'listUsers', 'updateUser', 'deleteUser'],
  throttle: ['consumeAttempt', 'resetAttempts', 'deleteExpiredAttempts'],
  remember: [
    'createRemember',
    'findRemember',
    'rotateRemember',
    'deleteRemember',
    'deleteRememberByUser',
    'deleteExpiredRemember',
  ],
  'second factors': [
    'createFactor',
    'listFactors',
    'updateFactor',
    'advanceFactorCounter',
    'deleteFactor',
    'deleteFactors',
  ],
} as const satisfies Record<string, readonly string[]>;

export type Capability = keyof typeof CAPABILITIES;

/** The interface each capability name stands for. */
export interface CapabilityTypes {
  'session index': SessionIndex;
  'data patch': SessionDataPatch;
  'session placement': SessionPlacement;
  'expiry sweep': ExpirySweep;
  'exclusive sweep': ExclusiveSweep;
  migrations: Migrations;
  users: UserStore;
  throttle: ThrottleStore;
  remember: RememberStore;
  'second factors': SecondFactorStore;
}

/** Whether `store` implements every method of `capability`. */
export function hasCapability<C extends Capability>(
  store: unknown,
  capability: C,
): store is CapabilityTypes[C] {
  if (store === null || typeof store !== 'object') return false;
  const methods = store as Record<string, unknown>;
  return CAPABILITIES[capability].every((method) => typeof methods[method] === 'function');
}

/**
 * `store` as `capability`, or a {@link ConfigError} naming what `needer` (an option or a method)
 * needs and which methods are missing.
 */
export function requireCapability<C extends Capability>(
  store: unknown,
  capability: C,
  needer: string,
): CapabilityTypes[C] {
  if (hasCapability(store, capability)) return store;
  const methods = (store ?? {}) as Record<string, unknown>;
  const missing = CAPABILITIES[capability].filter(
    (method) => typeof methods[method] !== 'function',
  );
  throw new ConfigError(
    `${needer}: needs a store with the "${capability}" capability (missing ${missing.join(', ')})`,
  );
}
