import {
  type ExpirySweep,
  hasCapability,
  requireCapability,
  type SessionDataPatch,
  type SessionIndex,
  type SessionPlacement,
} from './capabilities.js';
import { type Duration, parseDuration } from './duration.js';
import {
  ConfigError,
  callStore,
  DataTooLargeError,
  InvalidInputError,
  unavailable,
} from './errors.js';
import { type EventListener, eventSink, type SessionEvent } from './events.js';
import {
  createCapped,
  type SessionCap,
  type SessionLimitPolicy,
  sessionCapOf,
} from './session-cap.js';
import {
  checkAal,
  checkAmr,
  checkUserId,
  clipIp,
  clipUserAgent,
  NO_METHODS,
} from './session-input.js';
import { checkPatch, checkSnapshot, MAX_SNAPSHOT_BYTES } from './snapshots.js';
import type {
  AssuranceLevel,
  AuthMethod,
  JsonObject,
  SessionRecord,
  SessionStore,
} from './store.js';
import { generateToken, isWellFormedToken, sessionIdOf } from './token.js';

export type { SessionEvent } from './events.js';

export interface SessionOptions {
  /**
   * Where sessions live. The required port is enough for the seed flow; `maxSessionsPerUser`,
   * `listSessions` and `revokeAllForUser` need its "session index" capability, `setData` its
   * "data patch", `deleteExpired` its "expiry sweep".
   */
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
  /** Live sessions one user may hold. Default: no limit. Needs the "session index" capability. */
  maxSessionsPerUser?: number;
  /** What creating one more session does at the limit. Default `"evict-oldest"`. */
  onSessionLimit?: SessionLimitPolicy;
  /** Milliseconds since the epoch. Inject a fake clock in tests. */
  clock?: () => number;
  /** Called synchronously for every {@link SessionEvent}; a throwing listener never breaks a request. */
  onEvent?: EventListener;
}

export interface NewSession {
  /** Small snapshot of the user served with every validated request. */
  user?: JsonObject;
  data?: JsonObject;
  ip?: string | null;
  userAgent?: string | null;
  /** When the user proved who they are; defaults to now. */
  authenticatedAt?: number;
  /** Default 1. */
  aal?: AssuranceLevel;
  /** How the user proved who they are (RFC 8176 values); default none said. */
  amr?: readonly AuthMethod[];
}

/** What a rotation may change besides the id. */
export interface SessionChanges {
  readonly user?: JsonObject;
  readonly authenticatedAt?: number;
  readonly aal?: AssuranceLevel;
  readonly amr?: readonly AuthMethod[];
}

export interface IssuedSession {
  readonly session: SessionRecord;
  /** The raw token: hand it to the cookie writer and nothing else. */
  readonly token: string;
}

export type Validation =
  | { readonly session: SessionRecord; readonly reason: null }
  | { readonly session: null; readonly reason: 'malformed' | 'not_found' | 'expired' };

/** Refreshes remembered for de-duplication; past this the stale ones are dropped (or all). */
const MAX_REMEMBERED_REFRESHES = 10_000;
/**
 * Tokens drawn at most per new session when the store refuses ids (one server of n down: each
 * draw lands on a live one with chance >= 1/n). Past this the last is used and its create fails.
 */
const MAX_TOKEN_DRAWS = 256;

/**
 * The session engine: creates, validates, refreshes, rotates and revokes server-side sessions.
 * It knows tokens but not cookies, and checks the store's capabilities once, when it is built.
 */
export class Sessions {
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  /** The interval actually used between refresh writes (see {@link SessionOptions.touchInterval}). */
  readonly touchInterval: number;
  readonly maxSessionsPerUser: number | null;
  private readonly store: SessionStore;
  private readonly now: () => number;
  private readonly emit: EventListener;
  private readonly cap: SessionCap | null;
  /** The store's optional capabilities, or null when it lacks them (their methods then throw). */
  private readonly index: SessionIndex | null;
  private readonly patch: SessionDataPatch | null;
  private readonly placement: SessionPlacement | null;
  private readonly sweep: ExpirySweep | null;
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
    const store = options.store;
    this.store = store;
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

    this.cap = sessionCapOf(store, options.maxSessionsPerUser, options.onSessionLimit);
    this.index = hasCapability(store, 'session index') ? store : null;
    this.patch = hasCapability(store, 'data patch') ? store : null;
    this.placement = hasCapability(store, 'session placement') ? store : null;
    this.sweep = hasCapability(store, 'expiry sweep') ? store : null;
    this.maxSessionsPerUser = this.cap?.max ?? null;
    this.now = options.clock ?? Date.now;
    this.emit = eventSink(options.onEvent);
  }

  /**
   * Creates a session for `userId`. At the cap, `evict-oldest` deletes the user's oldest sessions
   * to make room; `reject` throws `SessionLimitError`. Throws {@link InvalidInputError} for
   * an empty or oversize `userId` or a snapshot that is not a plain JSON object of at most 8 KiB.
   */
  async create(userId: string, input: NewSession = {}): Promise<IssuedSession> {
    checkUserId(userId);
    const now = this.now();
    const { token, id } = this.newToken();
    const absoluteExpiresAt = now + this.absoluteTimeout;
    const session: SessionRecord = {
      id,
      userId,
      createdAt: now,
      lastSeenAt: now,
      idleExpiresAt: Math.min(now + this.idleTimeout, absoluteExpiresAt),
      absoluteExpiresAt,
      authenticatedAt: input.authenticatedAt ?? now,
      aal: checkAal(input.aal ?? 1),
      amr: checkAmr(input.amr ?? NO_METHODS),
      ip: clipIp(input.ip),
      userAgent: clipUserAgent(input.userAgent),
      user: checkSnapshot(input.user, 'user'),
      data: checkSnapshot(input.data, 'data'),
    };
    if (this.cap) await createCapped(this.store, this.cap, session, this.emit);
    else await callStore(() => this.store.create(session));
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
    // The hot path: what `callStore` does, inlined (no closure and no extra promise per request).
    let found: SessionRecord | null;
    try {
      found = await this.store.get(id);
    } catch (error) {
      throw unavailable(error);
    }
    if (!found) return NOT_FOUND;

    const now = this.now();
    if (now >= found.idleExpiresAt || now >= found.absoluteExpiresAt) {
      await callStore(() => this.store.delete(id));
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
      await callStore(() => this.store.touch(id, session.lastSeenAt, session.idleExpiresAt));
    } catch (error) {
      this.refreshed.delete(id);
      throw error;
    }
    this.emit({ type: 'refreshed', session });
    return { session, reason: null };
  }

  /**
   * A fresh token and its id, drawn again while the store's "session placement" refuses the id
   * (a Memcached server is down). Conditioning on the id's server costs at most log2(servers)
   * of the token's 256 random bits.
   */
  private newToken(): { token: string; id: string } {
    let token = generateToken();
    let id = sessionIdOf(token);
    for (
      let draw = 1;
      draw < MAX_TOKEN_DRAWS && this.placement?.acceptsSessionId(id) === false;
      draw++
    ) {
      token = generateToken();
      id = sessionIdOf(token);
    }
    return { token, id };
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

  /**
   * The live session a token names, read-only: one store read, and no refresh, no deletion and
   * no event whatever it finds. For rendering paths that cannot set cookies (e.g. React Server
   * Components). Throws {@link StoreUnavailableError} when the store is down.
   */
  async peek(token: string): Promise<SessionRecord | null> {
    if (typeof token !== 'string' || !isWellFormedToken(token)) return null;
    const session = await callStore(() => this.store.get(sessionIdOf(token)));
    const now = this.now();
    if (!session || now >= session.idleExpiresAt || now >= session.absoluteExpiresAt) return null;
    return session;
  }

  /** Ends the session a token belongs to. Gives the ended session, or null if there was none. */
  async logout(token: string): Promise<SessionRecord | null> {
    if (typeof token !== 'string' || !isWellFormedToken(token)) return null;
    const id = sessionIdOf(token);
    const session = await callStore(() => this.store.get(id));
    if (!session) return null;
    await callStore(() => this.store.delete(id));
    this.emit({ type: 'logout', session });
    return session;
  }

  /** Revokes one session by its public id. Gives the revoked record, or null if there was none. */
  async revoke(sessionId: string): Promise<SessionRecord | null> {
    const session = await callStore(() => this.store.get(sessionId));
    if (!session) return null;
    await callStore(() => this.store.delete(sessionId));
    this.emit({ type: 'revoked', userId: session.userId, sessionId, count: 1 });
    return session;
  }

  /**
   * Revokes every session of a user, except `except` (a session id) when given. Needs the
   * "session index" capability ({@link ConfigError} without it).
   */
  async revokeAllForUser(userId: string, options: { except?: string } = {}): Promise<number> {
    const index = this.index ?? requireCapability(this.store, 'session index', 'revokeAllForUser');
    const count = await callStore(() => index.deleteByUser(userId, options.except));
    this.emit({ type: 'revoked', userId, sessionId: null, count });
    return count;
  }

  /** The user's live sessions, oldest first. Needs the "session index" capability. */
  async listSessions(userId: string): Promise<SessionRecord[]> {
    const index = this.index ?? requireCapability(this.store, 'session index', 'listSessions');
    return callStore(() => index.listByUser(userId, this.now()));
  }

  /**
   * Changes a session's `data` as a top-level merge patch (RFC 7396 style): a key whose value is
   * `null` is removed, any other key is set to its value (replaced whole, never merged deeper),
   * keys not named are kept. One atomic store write, so parallel calls naming different keys never
   * lose one another, in any number of processes; nothing else of the session changes (expiry
   * included). Gives false, creating nothing, when there is no such session. Expiry is not
   * checked: a dead session not yet swept is still updated, harmlessly (it never validates again).
   *
   * Throws {@link InvalidInputError} when `patch` is not a plain JSON object of at most 8,192
   * bytes (finite numbers, well-formed strings without U+0000, plain objects and dense arrays,
   * nesting at most 64 deep), {@link DataTooLargeError} when the merged `data` would grow past
   * 8,192 bytes (see `SessionDataPatch.updateData` for how stores measure it),
   * {@link StoreUnavailableError} when the store cannot answer, and {@link ConfigError} when it
   * lacks the "data patch" capability. The store is not called, or writes nothing, when it throws.
   */
  async setData(sessionId: string, patch: JsonObject): Promise<boolean> {
    const store = this.patch ?? requireCapability(this.store, 'data patch', 'setData');
    if (typeof sessionId !== 'string' || sessionId.length === 0) {
      throw new InvalidInputError('sessionId: must be a non-empty string');
    }
    const { set, remove } = checkPatch(patch);
    const result = await callStore(() =>
      store.updateData(sessionId, { set, remove, maxBytes: MAX_SNAPSHOT_BYTES }),
    );
    if (result === 'too_large') throw new DataTooLargeError(MAX_SNAPSHOT_BYTES);
    return result === 'updated';
  }

  /**
   * Replaces a validated session with a new token for the same owner (privilege change,
   * re-authentication). The old token stops working at once; the absolute expiry is kept. Gives
   * null, leaving no new session, when the old one is already gone (revoked, logged out, expired
   * and swept): a rotation never brings a revoked session back under a new id.
   */
  async rotate(
    current: SessionRecord,
    changes: SessionChanges = {},
  ): Promise<IssuedSession | null> {
    const now = this.now();
    const { token, id } = this.newToken();
    const session: SessionRecord = {
      ...current,
      id,
      lastSeenAt: now,
      idleExpiresAt: Math.min(now + this.idleTimeout, current.absoluteExpiresAt),
      authenticatedAt: changes.authenticatedAt ?? current.authenticatedAt,
      aal: changes.aal === undefined ? current.aal : checkAal(changes.aal),
      amr: changes.amr === undefined ? current.amr : checkAmr(changes.amr),
      user: changes.user === undefined ? current.user : checkSnapshot(changes.user, 'user'),
    };
    // New first, then the old one: a revocation that took the old one first makes this delete
    // find nothing, and the new one goes too; a later one finds the new one in the user's index.
    await callStore(() => this.store.create(session));
    if (!(await callStore(() => this.store.delete(current.id)))) {
      await callStore(() => this.store.delete(session.id));
      return null;
    }
    this.emit({ type: 'rotated', session, previousId: current.id });
    return { session, token };
  }

  /**
   * Deletes every expired record; gives how many. Run it from a timer or `latchkey sweep`. Needs
   * the "expiry sweep" capability (a store whose records expire by themselves has nothing to do).
   */
  async deleteExpired(): Promise<number> {
    const sweep = this.sweep ?? requireCapability(this.store, 'expiry sweep', 'deleteExpired');
    return callStore(() => sweep.deleteExpired(this.now()));
  }
}

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
