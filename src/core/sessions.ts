import { type Duration, parseDuration } from './duration.js';
import { ConfigError, SessionLimitError, StoreUnavailableError } from './errors.js';
import type { JsonObject, JsonValue, SessionCap, SessionRecord, SessionStore } from './store.js';
import { generateToken, isWellFormedToken, sessionIdOf } from './token.js';

/** Everything the engine reports; records never contain a token, so events are safe to log. */
export type SessionEvent =
  | { readonly type: 'created'; readonly session: SessionRecord }
  | { readonly type: 'refreshed'; readonly session: SessionRecord }
  | { readonly type: 'expired'; readonly session: SessionRecord }
  | { readonly type: 'logout'; readonly session: SessionRecord }
  | { readonly type: 'rotated'; readonly session: SessionRecord; readonly previousId: string }
  | { readonly type: 'evicted'; readonly sessionId: string; readonly userId: string }
  | {
      readonly type: 'revoked';
      readonly userId: string;
      /** The one session revoked, or null when all of a user's sessions were. */
      readonly sessionId: string | null;
      readonly count: number;
    }
  | {
      readonly type: 'login_succeeded';
      readonly session: SessionRecord;
      readonly via: 'password' | 'remember';
    }
  | {
      readonly type: 'login_failed';
      /** The account tried, when it exists (an unknown name is not logged: it may be a password). */
      readonly userId: string | null;
      readonly ip: string | null;
    }
  | {
      readonly type: 'login_throttled';
      readonly userId: string | null;
      readonly ip: string | null;
      readonly retryAfterSeconds: number;
    }
  /** A rotated remember-me token was replayed: every session and token of the user was revoked. */
  | { readonly type: 'theft_detected'; readonly userId: string };

export interface SessionOptions {
  store: SessionStore;
  /** Inactivity after which a session dies. Default `"30m"`. */
  idleTimeout?: Duration;
  /** Lifetime from creation that no activity extends. Default `"12h"`. */
  absoluteTimeout?: Duration;
  /**
   * Minimum time between two refresh writes for one session. Default `"1m"`. Capped at half the
   * idle timeout so that a user active at least every `idleTimeout / 2` never expires idle.
   */
  touchInterval?: Duration;
  /** Live sessions one user may hold. Default: no limit. */
  maxSessionsPerUser?: number;
  /** What creating one more session does at the limit. Default `"evict-oldest"`. */
  onSessionLimit?: SessionCap['policy'];
  /** Milliseconds since the epoch. Inject a fake clock in tests. */
  clock?: () => number;
  /** Called synchronously for every {@link SessionEvent}; a throwing listener never breaks a request. */
  onEvent?: (event: SessionEvent) => void;
}

export interface NewSession {
  /** Small snapshot of the user served with every validated request. */
  user?: JsonObject;
  data?: JsonObject;
  ip?: string | null;
  userAgent?: string | null;
  /** When the user proved who they are; defaults to now. */
  authenticatedAt?: number;
}

export interface IssuedSession {
  readonly session: SessionRecord;
  /** The raw token: hand it to the cookie writer and nothing else. */
  readonly token: string;
}

export type Validation =
  | { readonly session: SessionRecord; readonly reason: null }
  | { readonly session: null; readonly reason: 'malformed' | 'not_found' | 'expired' };

const MAX_USER_ID = 1024;
const MAX_SNAPSHOT_BYTES = 8192;
const MAX_USER_AGENT = 512;
const MAX_IP = 64;

/** The session engine: creates, validates, refreshes and revokes server-side sessions. */
export class Sessions {
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  /** The interval actually used between refresh writes (see {@link SessionOptions.touchInterval}). */
  readonly touchInterval: number;
  readonly maxSessionsPerUser: number | null;
  protected readonly store: SessionStore;
  protected readonly now: () => number;
  private readonly cap: SessionCap | undefined;
  private readonly listener: ((event: SessionEvent) => void) | undefined;
  /**
   * Refreshes this engine wrote (or is writing), by session id: the `lastSeenAt` it wrote. Many
   * requests of one session arrive together; all of them read the record before the first refresh
   * lands, and without this each would write. Bounded (see {@link rememberRefresh}).
   */
  private readonly refreshed = new Map<string, number>();

  constructor(options: SessionOptions) {
    if (!options || typeof options.store?.get !== 'function') {
      throw new ConfigError('store: a SessionStore is required');
    }
    this.store = options.store;
    this.idleTimeout = parseDuration(options.idleTimeout ?? '30m', 'idleTimeout');
    this.absoluteTimeout = parseDuration(options.absoluteTimeout ?? '12h', 'absoluteTimeout');
    const touchInterval = parseDuration(options.touchInterval ?? '1m', 'touchInterval');
    if (this.idleTimeout < 1000) throw new ConfigError('idleTimeout: must be at least 1s');
    if (this.idleTimeout > this.absoluteTimeout) {
      throw new ConfigError(
        `idleTimeout (${this.idleTimeout} ms) must not exceed absoluteTimeout (${this.absoluteTimeout} ms)`,
      );
    }
    this.touchInterval = Math.min(touchInterval, Math.floor(this.idleTimeout / 2));

    const max = options.maxSessionsPerUser;
    if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
      throw new ConfigError(`maxSessionsPerUser: must be a whole number >= 1, got ${String(max)}`);
    }
    const policy = options.onSessionLimit ?? 'evict-oldest';
    if (policy !== 'evict-oldest' && policy !== 'reject') {
      throw new ConfigError(
        `onSessionLimit: must be "evict-oldest" or "reject", got ${String(policy)}`,
      );
    }
    this.maxSessionsPerUser = max ?? null;
    this.cap = max === undefined ? undefined : { max, policy };
    this.now = options.clock ?? Date.now;
    this.listener = options.onEvent;
  }

  /** Creates a session for `userId`. Throws {@link SessionLimitError} at the cap under `reject`. */
  async create(userId: string, input: NewSession = {}): Promise<IssuedSession> {
    if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_USER_ID) {
      throw new TypeError(
        `userId: must be a non-empty string of at most ${MAX_USER_ID} characters`,
      );
    }
    const now = this.now();
    const token = generateToken();
    const absoluteExpiresAt = now + this.absoluteTimeout;
    const session: SessionRecord = {
      id: sessionIdOf(token),
      userId,
      createdAt: now,
      lastSeenAt: now,
      idleExpiresAt: Math.min(now + this.idleTimeout, absoluteExpiresAt),
      absoluteExpiresAt,
      authenticatedAt: input.authenticatedAt ?? now,
      ip: clip(input.ip, MAX_IP),
      userAgent: clip(input.userAgent, MAX_USER_AGENT),
      user: checkSnapshot(input.user, 'user'),
      data: checkSnapshot(input.data, 'data'),
    };
    const result = await this.call(() => this.store.create(session, this.cap));
    for (const sessionId of result.evicted) this.emit({ type: 'evicted', sessionId, userId });
    if (!result.created) throw new SessionLimitError(userId, this.cap?.max ?? 0);
    this.emit({ type: 'created', session });
    return { session, token };
  }

  /**
   * Looks a token up: one store read, plus at most one refresh write per touch interval.
   * A malformed token never reaches the store; an expired record found is deleted.
   * Throws {@link StoreUnavailableError} when the store cannot answer.
   */
  async validate(token: string): Promise<Validation> {
    if (typeof token !== 'string' || !isWellFormedToken(token)) return MALFORMED;
    const id = sessionIdOf(token);
    // The hot path: what `call` does, inlined (no closure and no extra promise per request).
    let found: SessionRecord | null;
    try {
      found = await this.store.get(id);
    } catch (error) {
      throw unavailable(error);
    }
    if (!found) return NOT_FOUND;

    const now = this.now();
    if (now >= found.idleExpiresAt || now >= found.absoluteExpiresAt) {
      await this.call(() => this.store.delete(id));
      this.emit({ type: 'expired', session: found });
      return EXPIRED;
    }
    if (now - found.lastSeenAt < this.touchInterval) return { session: found, reason: null };
    // Refreshed by this engine within the interval (the store answered before that write landed,
    // or from a cache): answer with the refreshed times, write nothing.
    const written = this.refreshed.get(id);
    if (written !== undefined && now - written < this.touchInterval && written > found.lastSeenAt) {
      return { session: refreshedAt(found, written, this.idleTimeout), reason: null };
    }

    const session = refreshedAt(found, now, this.idleTimeout);
    this.rememberRefresh(id, now);
    try {
      await this.call(() => this.store.touch(id, session.lastSeenAt, session.idleExpiresAt));
    } catch (error) {
      this.refreshed.delete(id);
      throw error;
    }
    this.emit({ type: 'refreshed', session });
    return { session, reason: null };
  }

  /** Records a refresh; entries older than the touch interval go when the map grows large. */
  private rememberRefresh(id: string, at: number): void {
    if (this.refreshed.size >= MAX_REMEMBERED_REFRESHES) {
      for (const [key, time] of this.refreshed) {
        if (at - time >= this.touchInterval) this.refreshed.delete(key);
      }
      if (this.refreshed.size >= MAX_REMEMBERED_REFRESHES) this.refreshed.clear();
    }
    this.refreshed.set(id, at);
  }

  /** Ends the session a token belongs to. Gives the ended session, or null if there was none. */
  async logout(token: string): Promise<SessionRecord | null> {
    if (typeof token !== 'string' || !isWellFormedToken(token)) return null;
    const id = sessionIdOf(token);
    const session = await this.call(() => this.store.get(id));
    if (!session) return null;
    await this.call(() => this.store.delete(id));
    this.emit({ type: 'logout', session });
    return session;
  }

  /** Revokes one session by its public id. Gives the revoked record, or null if there was none. */
  async revoke(sessionId: string): Promise<SessionRecord | null> {
    const session = await this.call(() => this.store.get(sessionId));
    if (!session) return null;
    await this.call(() => this.store.delete(sessionId));
    this.emit({ type: 'revoked', userId: session.userId, sessionId, count: 1 });
    return session;
  }

  /** Revokes every session of a user, except `except` (a session id) when given. */
  async revokeAllForUser(userId: string, options: { except?: string } = {}): Promise<number> {
    const count = await this.call(() => this.store.deleteByUser(userId, options.except));
    this.emit({ type: 'revoked', userId, sessionId: null, count });
    return count;
  }

  /**
   * Changes a session's `data` as a top-level merge patch (RFC 7396 style): a key whose value is
   * `null` is removed, any other key is set to its value (replaced whole, never merged deeper),
   * keys not named are kept. One atomic store write, so parallel calls naming different keys never
   * lose one another, in any number of processes; nothing else of the session changes (expiry
   * included). Gives false, creating nothing, when there is no such session. Expiry is not
   * checked: a dead session not yet swept is still updated, harmlessly (it never validates again).
   *
   * Throws `TypeError` when `patch` is not a plain JSON object of at most 8,192 bytes (finite
   * numbers, well-formed strings without U+0000, plain objects and dense arrays, nesting at most
   * 64 deep), `RangeError` when the merged `data` would grow past 8,192 bytes (see
   * {@link SessionStore.updateData} for how stores measure it), and {@link StoreUnavailableError}
   * when the store cannot answer. The store is not called, or writes nothing, when it throws.
   */
  async setData(sessionId: string, patch: JsonObject): Promise<boolean> {
    if (typeof sessionId !== 'string' || sessionId.length === 0) {
      throw new TypeError('sessionId: must be a non-empty string');
    }
    const { set, remove } = checkPatch(patch);
    const result = await this.call(() =>
      this.store.updateData(sessionId, { set, remove, maxBytes: MAX_SNAPSHOT_BYTES }),
    );
    if (result === 'too_large') {
      throw new RangeError(
        `data: the merged data would exceed ${MAX_SNAPSHOT_BYTES} bytes; nothing was changed`,
      );
    }
    return result === 'updated';
  }

  /** The user's live sessions, oldest first. */
  listSessions(userId: string): Promise<SessionRecord[]> {
    return this.call(() => this.store.listByUser(userId, this.now()));
  }

  /**
   * Replaces a validated session with a new token for the same owner (privilege change,
   * re-authentication). The old token stops working at once; the absolute expiry is kept.
   */
  async rotate(
    current: SessionRecord,
    changes: { user?: JsonObject; authenticatedAt?: number } = {},
  ): Promise<IssuedSession> {
    const now = this.now();
    const token = generateToken();
    const session: SessionRecord = {
      ...current,
      id: sessionIdOf(token),
      lastSeenAt: now,
      idleExpiresAt: Math.min(now + this.idleTimeout, current.absoluteExpiresAt),
      authenticatedAt: changes.authenticatedAt ?? current.authenticatedAt,
      user: changes.user === undefined ? current.user : checkSnapshot(changes.user, 'user'),
    };
    await this.call(() => this.store.create(session));
    await this.call(() => this.store.delete(current.id));
    this.emit({ type: 'rotated', session, previousId: current.id });
    return { session, token };
  }

  /** Deletes every expired record; gives how many. Run it from a timer or `latchkey sweep`. */
  deleteExpired(): Promise<number> {
    return this.call(() => this.store.deleteExpired(this.now()));
  }

  /** Runs a store operation; any failure becomes {@link StoreUnavailableError} (fail closed). */
  protected async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw unavailable(error);
    }
  }

  protected emit(event: SessionEvent): void {
    if (!this.listener) return;
    try {
      this.listener(event);
    } catch (error) {
      process.emitWarning(`latchkey onEvent listener threw: ${String(error)}`);
    }
  }
}

/** Refreshes remembered for de-duplication; past this the stale ones are dropped (or all). */
const MAX_REMEMBERED_REFRESHES = 10_000;

/** `record` as a refresh at `now` leaves it: the sliding deadline never passes the absolute one. */
function refreshedAt(record: SessionRecord, now: number, idleTimeout: number): SessionRecord {
  return {
    ...record,
    lastSeenAt: now,
    idleExpiresAt: Math.min(now + idleTimeout, record.absoluteExpiresAt),
  };
}

/** Answers without a session are the same every time: shared, frozen, never allocated per request. */
const MALFORMED: Validation = Object.freeze({ session: null, reason: 'malformed' } as const);
const NOT_FOUND: Validation = Object.freeze({ session: null, reason: 'not_found' } as const);
const EXPIRED: Validation = Object.freeze({ session: null, reason: 'expired' } as const);

function unavailable(error: unknown): StoreUnavailableError {
  return error instanceof StoreUnavailableError ? error : new StoreUnavailableError(error);
}

function clip(value: string | null | undefined, max: number): string | null {
  if (typeof value !== 'string' || value.length === 0) return null;
  return value.length > max ? value.slice(0, max) : value;
}

function checkSnapshot(value: JsonObject | undefined, label: string): JsonObject {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${label}: must be a plain JSON object`);
  }
  if (Buffer.byteLength(JSON.stringify(value)) > MAX_SNAPSHOT_BYTES) {
    throw new TypeError(`${label}: must serialise to at most ${MAX_SNAPSHOT_BYTES} bytes`);
  }
  return value;
}

const MAX_PATCH_DEPTH = 64;
/** A lone surrogate (like U+0000, checked apart): JSON can spell it, PostgreSQL's jsonb cannot keep it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Splits a `setData` patch into keys to set and keys to remove, after checking it is JSON-safe. */
function checkPatch(patch: unknown): { set: JsonObject; remove: string[] } {
  if (!isPlainObject(patch)) throw new TypeError('data patch: must be a plain JSON object');
  checkJson(patch, 'data patch', 0);
  if (Buffer.byteLength(JSON.stringify(patch)) > MAX_SNAPSHOT_BYTES) {
    throw new TypeError(`data patch: must serialise to at most ${MAX_SNAPSHOT_BYTES} bytes`);
  }
  const set: [string, JsonValue][] = [];
  const remove: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) remove.push(key);
    else set.push([key, value as JsonValue]);
  }
  // fromEntries defines own properties, so a key named "__proto__" stays data.
  return { set: Object.fromEntries(set), remove };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkJson(value: unknown, path: string, depth: number): void {
  switch (typeof value) {
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${path}: must be a finite number`);
      return;
    case 'string':
      checkString(value, path);
      return;
    case 'object': {
      if (value === null) return;
      if (depth >= MAX_PATCH_DEPTH) {
        throw new TypeError(`${path}: nested more than ${MAX_PATCH_DEPTH} levels deep`);
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) throw new TypeError(`${path}[${i}]: arrays must not have holes`);
          checkJson(value[i], `${path}[${i}]`, depth + 1);
        }
        return;
      }
      if (!isPlainObject(value)) {
        throw new TypeError(`${path}: must be JSON (a plain object, not a class instance)`);
      }
      if (Object.getOwnPropertySymbols(value).length > 0) {
        throw new TypeError(`${path}: symbol keys are not JSON`);
      }
      for (const [key, inner] of Object.entries(value)) {
        const at = `${path}.${JSON.stringify(key)}`;
        checkString(key, `${at} (key)`);
        checkJson(inner, at, depth + 1);
      }
      return;
    }
    default:
      throw new TypeError(`${path}: ${typeof value} is not JSON`);
  }
}

function checkString(value: string, path: string): void {
  if (value.includes('\u0000') || LONE_SURROGATE.test(value)) {
    throw new TypeError(`${path}: must not contain U+0000 or a lone surrogate`);
  }
}
