import { randomUUID } from 'node:crypto';
import { HostCookie } from './cookies.js';
import {
  CredentialError,
  checkNewPassword,
  hashPassword,
  needsRehash,
  normalizeUsername,
  passwordProblem,
  usernameKey,
  verifyDummyPassword,
  verifyPassword,
} from './credentials.js';
import { type Duration, parseDuration } from './duration.js';
import { ConfigError, StoreUnavailableError } from './errors.js';
import { RememberTokens } from './remember.js';
import { type NewSession, type SessionOptions, Sessions } from './sessions.js';
import type {
  JsonObject,
  RememberStore,
  SessionRecord,
  ThrottleStore,
  UserRecord,
  UserStore,
} from './store.js';
import { LoginThrottle, type LoginThrottleOptions } from './throttle.js';
import { isWellFormedToken, sessionIdOf } from './token.js';

/**
 * Checks a password against an app's own user table. Gives the user id (and optionally the
 * snapshot to keep in the session), or null for any failure: latchkey reports all of them alike.
 */
export type VerifyCredentials = (
  username: string,
  password: string,
) => Promise<{ userId: string; user?: JsonObject } | null>;

export interface LatchkeyOptions extends SessionOptions {
  /** Default `"__Host-session"`; a `__Host-` name makes the browser refuse any Domain or Path trick. */
  cookieName?: string;
  /** Where HTML navigations without a session are sent. Default `"/login"`. */
  loginPath?: string;
  /** Accounts kept by latchkey (often the same object as `store`). Excludes `verifyCredentials`. */
  users?: UserStore;
  /** For apps with their own user table. Excludes `users`. */
  verifyCredentials?: VerifyCredentials;
  /** Login attempt limits per account and per IP, counted in `store`. Off when absent. */
  throttle?: { store: ThrottleStore } & LoginThrottleOptions;
  /** "Remember me" tokens, issued when a login asks for them. Off when absent. */
  remember?: RememberOptions;
  /**
   * How long after a password login sensitive changes (password, revoking sessions, disabling the
   * account) go through without asking for the password again. Default `"10m"`.
   */
  reauthWindow?: Duration;
}

export interface RememberOptions {
  store: RememberStore;
  /** Default `"__Host-remember"`. */
  cookieName?: string;
  /** Life of a token chain from its password login; rotation never extends it. Default and most `"30d"`. */
  maxAge?: Duration;
}

/** NIST SP 800-63B 7.2 (AAL1 reauthentication): remember-me lasts at most 30 days. */
const REMEMBER_MAX_MS = 30 * 24 * 3_600_000;
/** A rotated remember-me token still yields its successor this long: parallel tabs stay in. */
const REMEMBER_GRACE_MS = 10_000;

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

export type LoginResult =
  | (StartedSession & { readonly ok: true; readonly user: JsonObject })
  | {
      readonly ok: false;
      /**
       * `invalid_request`: a field is missing, not a string or oversize (decided before hashing).
       * `invalid_credentials`: unknown user, wrong password or disabled account, never told apart.
       */
      readonly error: 'invalid_credentials' | 'invalid_request';
    }
  | Throttled;

/** Too many recent attempts on this account or from this IP; nothing was checked. */
export interface Throttled {
  readonly ok: false;
  readonly error: 'too_many_attempts';
  readonly retryAfterSeconds: number;
}

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
    };

/** An account as shown to people and tools: never the password hash. */
export interface UserInfo {
  readonly id: string;
  readonly username: string;
  readonly createdAt: number;
  readonly disabled: boolean;
}

type CredentialCheck =
  | { readonly userId: string; readonly user: JsonObject }
  | { readonly userId: string | null; readonly user: null };

/** Login usernames longer than this are refused unread; latchkey's own accounts allow 64. */
const MAX_LOGIN_USERNAME = 256;

/** The parts of an HTTP request latchkey reads; adapters fill it from their framework. */
export interface RequestInfo {
  readonly method: string;
  /** Request target: a path with query (`/a?b=1`) or an absolute URL. */
  readonly url: string;
  readonly cookie: string | null;
  readonly accept: string | null;
  readonly secFetchMode: string | null;
  /** Recorded on a session restored from a remember-me cookie. */
  readonly ip?: string | null;
  readonly userAgent?: string | null;
}

/** A framework-free HTTP answer for a request that may not proceed. */
export interface Denial {
  readonly status: 303 | 401 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type Authentication =
  | {
      readonly ok: true;
      readonly session: SessionRecord;
      readonly user: JsonObject;
      readonly setCookie: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason: 'missing' | 'malformed' | 'not_found' | 'expired' | 'unavailable';
      readonly denial: Denial;
      /** Clears a cookie that named no valid session. */
      readonly setCookie: readonly string[];
    };

export interface StartedSession {
  readonly session: SessionRecord;
  /** Send every value as its own `Set-Cookie` header. */
  readonly setCookie: readonly string[];
}

/** Seconds a client should wait before retrying while the store is down. */
export const RETRY_AFTER_SECONDS = 5;

/** The session engine plus cookies and request-level answers; no HTTP framework involved. */
export class Latchkey extends Sessions {
  readonly sessionCookie: HostCookie;
  /** The remember-me cookie, or null when remember-me is off. */
  readonly rememberCookie: HostCookie | null;
  readonly loginPath: string;
  readonly reauthWindow: number;
  private readonly users: UserStore | null;
  private readonly verifyCredentials: VerifyCredentials | null;
  private readonly throttle: LoginThrottle | null;
  private readonly remember: RememberTokens | null;
  private readonly rememberStore: RememberStore | null;

  constructor(options: LatchkeyOptions) {
    super(options);
    this.sessionCookie = new HostCookie(options.cookieName ?? '__Host-session');
    this.loginPath = options.loginPath ?? '/login';
    if (options.users && options.verifyCredentials) {
      throw new ConfigError(
        'users and verifyCredentials: give one way to check passwords, not both',
      );
    }
    if (options.users && typeof options.users.findUserByKey !== 'function') {
      throw new ConfigError('users: must be a UserStore');
    }
    this.users = options.users ?? null;
    this.verifyCredentials = options.verifyCredentials ?? null;
    this.reauthWindow = parseDuration(options.reauthWindow ?? '10m', 'reauthWindow');
    const { throttle, remember } = options;
    if (throttle && typeof throttle.store?.consumeAttempt !== 'function') {
      throw new ConfigError('throttle.store: must be a ThrottleStore');
    }
    this.throttle = throttle ? new LoginThrottle(throttle.store, this.now, throttle) : null;
    if (remember && typeof remember.store?.rotateRemember !== 'function') {
      throw new ConfigError('remember.store: must be a RememberStore');
    }
    const lifetimeMs = parseDuration(remember?.maxAge ?? '30d', 'remember.maxAge');
    if (lifetimeMs > REMEMBER_MAX_MS) throw new ConfigError('remember.maxAge: at most 30d');
    this.rememberStore = remember?.store ?? null;
    this.rememberCookie = remember
      ? new HostCookie(remember.cookieName ?? '__Host-remember')
      : null;
    this.remember =
      remember && this.rememberCookie
        ? new RememberTokens(remember.store, this.rememberCookie, {
            lifetimeMs,
            graceMs: REMEMBER_GRACE_MS,
            now: this.now,
          })
        : null;
    if (this.rememberCookie?.name === this.sessionCookie.name) {
      throw new ConfigError('remember.cookieName: must differ from cookieName');
    }
  }

  /**
   * Checks a username and password and starts a session. Every failure to match is the same
   * `invalid_credentials`, and takes as long whether or not the account exists.
   */
  async login(credentials: Credentials, context: LoginContext = {}): Promise<LoginResult> {
    const input = readLoginInput(credentials);
    if (!input) return { ok: false, error: 'invalid_request' };
    const throttleKey = usernameKey(input.username);
    const throttled = await this.countAttempt(throttleKey, null, context);
    if (throttled) return throttled;
    const check = await this.checkCredentials(input.username, input.password);
    if (!check.user) {
      this.emit({ type: 'login_failed', userId: check.userId, ip: context.ip ?? null });
      return { ok: false, error: 'invalid_credentials' };
    }
    await this.attemptSucceeded(throttleKey);
    const result = await this.startLoggedIn(check.userId, check.user, context);
    this.emit({ type: 'login_succeeded', session: result.session, via: 'password' });
    const remember = this.remember;
    if (!remember || !this.rememberCookie) return result;
    // A token this browser held from an earlier login is replaced, never left behind.
    const previous = this.rememberCookie.read(context.cookie).value;
    if (previous !== null) await this.call(() => remember.forget(previous));
    if (credentials.remember !== true) {
      const setCookie = previous === null ? [] : [this.rememberCookie.blank()];
      return { ...result, setCookie: [...result.setCookie, ...setCookie] };
    }
    const rememberCookie = await this.call(() => remember.issue(check.userId));
    return { ...result, setCookie: [...result.setCookie, rememberCookie] };
  }

  /**
   * Whether the user behind `session` may make a sensitive change now: yes after a password login
   * within `reauthWindow` (a remember-me login does not count), or when `password` is theirs —
   * which renews the session id and its authentication time. Password guesses count against the
   * account's login limit.
   */
  async reauthenticate(
    session: SessionRecord,
    password: unknown,
    context: LoginContext = {},
  ): Promise<Reauthentication> {
    if (this.isRecentLogin(session)) return { ok: true, session, setCookie: [] };
    const problem = passwordProblem(password);
    if (problem === 'missing' || problem === 'too_long') {
      return { ok: false, error: 'reauthentication_required' };
    }
    const account = await this.accountOf(session);
    if (!account) return { ok: false, error: 'reauthentication_required' };
    const throttled = await this.countAttempt(account.key, session.userId, context);
    if (throttled) return throttled;
    if (!(await account.verify(password as string))) {
      this.emit({ type: 'login_failed', userId: session.userId, ip: context.ip ?? null });
      return { ok: false, error: 'reauthentication_required' };
    }
    await this.attemptSucceeded(account.key);
    const rotated = await this.rotateSession(session, { authenticatedAt: this.now() });
    return { ok: true, ...rotated };
  }

  /**
   * Whether this session proved the password within `reauthWindow`. A session restored from
   * remember-me carries its token chain's login time, which predates the session itself: it
   * never counts, however recent that login.
   */
  isRecentLogin(session: SessionRecord): boolean {
    return (
      session.authenticatedAt >= session.createdAt &&
      this.now() - session.authenticatedAt <= this.reauthWindow
    );
  }

  /** Ends every session and remember-me token of the user ("log out everywhere"). */
  async logoutEverywhere(userId: string): Promise<void> {
    await this.revokeAllForUser(userId);
    await this.forgetRemembered(userId);
  }

  /** Counts a login attempt; gives the refusal when over a limit, else null. */
  private async countAttempt(
    key: string,
    userId: string | null,
    context: LoginContext,
  ): Promise<Throttled | null> {
    const throttle = this.throttle;
    if (!throttle) return null;
    const ip = context.ip ?? null;
    const outcome = await this.call(() => throttle.attempt(key, ip));
    if (outcome.allowed) return null;
    const { retryAfterSeconds } = outcome;
    this.emit({ type: 'login_throttled', userId, ip, retryAfterSeconds });
    return { ok: false, error: 'too_many_attempts', retryAfterSeconds };
  }

  private async attemptSucceeded(key: string): Promise<void> {
    const throttle = this.throttle;
    if (throttle) await this.call(() => throttle.succeeded(key));
  }

  /** How to check the password of the account behind a session, or null when it is gone. */
  private async accountOf(
    session: SessionRecord,
  ): Promise<{ key: string; verify(password: string): Promise<boolean> } | null> {
    if (this.verifyCredentials) {
      const verifyCredentials = this.verifyCredentials;
      const username = session.user.username;
      if (typeof username !== 'string') return null;
      return {
        key: usernameKey(username),
        verify: async (password) =>
          (await verifyCredentials(username, password))?.userId === session.userId,
      };
    }
    const users = this.requireUsers();
    const record = await this.call(() => users.findUserById(session.userId));
    if (!record || record.disabled) return null;
    return {
      key: record.usernameKey,
      verify: (password) => verifyPassword(record.passwordHash, password),
    };
  }

  private async forgetRemembered(userId: string): Promise<void> {
    const store = this.rememberStore;
    if (store) await this.call(() => store.deleteRememberByUser(userId));
  }

  /** Creates an account (see {@link createUser}) and logs it in. */
  async signup(credentials: Credentials, context: LoginContext = {}): Promise<SignupResult> {
    let user: UserInfo;
    try {
      user = await this.createUser(credentials?.username, credentials?.password);
    } catch (error) {
      if (!(error instanceof CredentialError)) throw error;
      return { ok: false, error: error.code, message: error.message };
    }
    return this.startLoggedIn(user.id, snapshotOf(user), context);
  }

  /**
   * Adds an account to the user store. Throws {@link CredentialError} for an unusable username or
   * password or a taken username (compared after NFC and case folding).
   */
  async createUser(username: unknown, password: unknown): Promise<UserInfo> {
    const users = this.requireUsers();
    const name = normalizeUsername(username);
    if (name === null) {
      throw new CredentialError(
        'invalid_username',
        'Username must be 1 to 64 characters, without control characters.',
      );
    }
    checkNewPassword(password);
    const key = usernameKey(name);
    const taken = new CredentialError('username_taken', 'That username is taken.');
    if (await this.call(() => users.findUserByKey(key))) throw taken;
    const record: UserRecord = {
      id: randomUUID(),
      username: name,
      usernameKey: key,
      passwordHash: await hashPassword(password),
      createdAt: this.now(),
      disabled: false,
    };
    if (!(await this.call(() => users.createUser(record)))) throw taken;
    return infoOf(record);
  }

  /** The account named `username` (compared after NFC and case folding), or null. */
  async findUser(username: string): Promise<UserInfo | null> {
    const users = this.requireUsers();
    const name = normalizeUsername(username);
    if (name === null) return null;
    const record = await this.call(() => users.findUserByKey(usernameKey(name)));
    return record && infoOf(record);
  }

  /** Every account, oldest first. */
  async listUsers(): Promise<UserInfo[]> {
    const users = this.requireUsers();
    return (await this.call(() => users.listUsers())).map(infoOf);
  }

  /**
   * Sets a new password, forgets every remember-me token of the user and, unless
   * `signOutOthers` is false, ends every session except `keepSession` (the one that changed it, if
   * any). False when there is no such user. Throws {@link CredentialError}.
   */
  async changePassword(
    userId: string,
    password: unknown,
    options: { keepSession?: string; signOutOthers?: boolean } = {},
  ): Promise<boolean> {
    const users = this.requireUsers();
    checkNewPassword(password);
    const passwordHash = await hashPassword(password);
    if (!(await this.call(() => users.updateUser(userId, { passwordHash })))) return false;
    if (options.signOutOthers !== false) {
      await this.revokeAllForUser(userId, { except: options.keepSession });
    }
    await this.forgetRemembered(userId);
    return true;
  }

  /** Blocks logins and ends all the user's sessions. False when there is no such user. */
  async disableUser(userId: string): Promise<boolean> {
    const users = this.requireUsers();
    if (!(await this.call(() => users.updateUser(userId, { disabled: true })))) return false;
    await this.logoutEverywhere(userId);
    return true;
  }

  /** Allows logins again. False when there is no such user. */
  enableUser(userId: string): Promise<boolean> {
    const users = this.requireUsers();
    return this.call(() => users.updateUser(userId, { disabled: false }));
  }

  /** Deletes the account and ends all its sessions. False when there is no such user. */
  async deleteUser(userId: string): Promise<boolean> {
    const users = this.requireUsers();
    if (!(await this.call(() => users.deleteUser(userId)))) return false;
    await this.logoutEverywhere(userId);
    return true;
  }

  /**
   * The account behind a correct password (`user` set), or a failure naming the account tried
   * when it exists. Unknown users cost one dummy verification.
   */
  private async checkCredentials(username: string, password: string): Promise<CredentialCheck> {
    if (this.verifyCredentials) {
      const found = await this.verifyCredentials(username, password);
      if (!found) return { userId: null, user: null };
      return { userId: found.userId, user: found.user ?? { id: found.userId, username } };
    }
    const users = this.requireUsers();
    const name = normalizeUsername(username);
    const record = name && (await this.call(() => users.findUserByKey(usernameKey(name))));
    if (!record) {
      await verifyDummyPassword(password);
      return { userId: null, user: null };
    }
    const matches = await verifyPassword(record.passwordHash, password);
    if (!matches || record.disabled) return { userId: record.id, user: null };
    if (needsRehash(record.passwordHash)) {
      const passwordHash = await hashPassword(password);
      await this.call(() => users.updateUser(record.id, { passwordHash }));
    }
    return { userId: record.id, user: snapshotOf(record) };
  }

  private async startLoggedIn(
    userId: string,
    user: JsonObject,
    context: LoginContext,
  ): Promise<StartedSession & { ok: true; user: JsonObject }> {
    const { ip, userAgent, cookie } = context;
    const started = await this.startSession(userId, { user, ip, userAgent }, cookie ?? null);
    return { ok: true, ...started, user: started.session.user };
  }

  private requireUsers(): UserStore {
    if (this.users) return this.users;
    throw new ConfigError('users: this needs a UserStore (new Latchkey({ users, ... }))');
  }

  /**
   * Answers who is making `request`: one store read (plus a refresh write at most once per touch
   * interval). Never throws for a bad cookie or a store outage: those become a {@link Denial}.
   */
  async authenticate(request: Request | RequestInfo): Promise<Authentication> {
    const info = request instanceof Request ? requestInfoOf(request) : request;
    try {
      const cookie = this.sessionCookie.read(info.cookie);
      let reason: 'missing' | 'malformed' | 'not_found' | 'expired' = cookie.reason ?? 'missing';
      const setCookie: string[] = [];
      if (cookie.value !== null) {
        const validation = await this.validate(cookie.value);
        if (validation.session) {
          const { session } = validation;
          return { ok: true, session, user: session.user, setCookie: [] };
        }
        reason = validation.reason;
      }
      if (reason !== 'missing') setCookie.push(this.sessionCookie.blank());
      const restored = await this.restoreRemembered(info);
      if (restored.session) {
        const { session } = restored;
        return { ok: true, session, user: session.user, setCookie: restored.setCookie };
      }
      setCookie.push(...restored.setCookie);
      return { ok: false, reason, setCookie, denial: this.deny(info, reason) };
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      return {
        ok: false,
        reason: 'unavailable',
        setCookie: [],
        denial: this.deny(info, 'unavailable'),
      };
    }
  }

  /**
   * A new session from the request's remember-me cookie (rotating the token), or none, with the
   * cookies to set. A replayed rotated token is theft: the user is logged out everywhere.
   */
  private async restoreRemembered(
    info: RequestInfo,
  ): Promise<{ session: SessionRecord | null; setCookie: readonly string[] }> {
    const remember = this.remember;
    const cookie = this.rememberCookie;
    if (!remember || !cookie) return { session: null, setCookie: [] };
    const read = cookie.read(info.cookie);
    if (read.value === null) {
      return { session: null, setCookie: read.reason === 'malformed' ? [cookie.blank()] : [] };
    }
    const value = read.value;
    const check = await this.call(() => remember.use(value));
    if (check.status === 'theft') {
      await this.logoutEverywhere(check.userId);
      this.emit({ type: 'theft_detected', userId: check.userId });
    }
    if (check.status !== 'valid') return { session: null, setCookie: [cookie.blank()] };
    const { userId } = check.record;
    const user = await this.rememberedUser(userId);
    if (!user) {
      await this.forgetRemembered(userId);
      return { session: null, setCookie: [cookie.blank()] };
    }
    const { session, token } = await this.create(userId, {
      user,
      ip: info.ip ?? null,
      userAgent: info.userAgent ?? null,
      // The password login that started the token chain: a remembered login is never "recent".
      authenticatedAt: check.record.createdAt,
    });
    this.emit({ type: 'login_succeeded', session, via: 'remember' });
    return { session, setCookie: [this.sessionCookie.serialize(token), check.setCookie] };
  }

  /** The snapshot for a remembered user, or null when the account is gone or disabled. */
  private async rememberedUser(userId: string): Promise<JsonObject | null> {
    if (!this.users) return { id: userId };
    const users = this.users;
    const record = await this.call(() => users.findUserById(userId));
    return record && !record.disabled ? snapshotOf(record) : null;
  }

  /**
   * The live session a token names, read-only: one store read, and no refresh, no deletion and
   * no event whatever it finds. For rendering paths that cannot set cookies (e.g. React Server
   * Components). Throws {@link StoreUnavailableError} when the store is down.
   */
  async peek(token: string): Promise<SessionRecord | null> {
    if (!isWellFormedToken(token)) return null;
    const session = await this.call(() => this.store.get(sessionIdOf(token)));
    const now = this.now();
    if (!session || now >= session.idleExpiresAt || now >= session.absoluteExpiresAt) return null;
    return session;
  }

  /**
   * Logs a user in: ends any session the request already carried (no fixation, no promotion of a
   * pre-login session) and issues a new token in a fresh cookie.
   */
  async startSession(
    userId: string,
    input: NewSession = {},
    cookieHeader: string | null = null,
  ): Promise<StartedSession> {
    const previous = this.sessionCookie.read(cookieHeader);
    if (previous.value !== null) await this.logout(previous.value);
    const { session, token } = await this.create(userId, input);
    return { session, setCookie: [this.sessionCookie.serialize(token)] };
  }

  /** Logs out whoever `cookieHeader` names and gives the cookie that clears it in the browser. */
  async endSession(
    cookieHeader: string | null,
  ): Promise<{ session: SessionRecord | null; setCookie: readonly string[] }> {
    const current = this.sessionCookie.read(cookieHeader);
    const session = current.value === null ? null : await this.logout(current.value);
    const setCookie = [this.sessionCookie.blank()];
    const remember = this.remember;
    if (remember && this.rememberCookie) {
      const token = this.rememberCookie.read(cookieHeader).value;
      await this.call(() => remember.forget(token));
      setCookie.push(this.rememberCookie.blank());
    }
    return { session, setCookie };
  }

  /** Replaces a session's token (privilege change) and gives the new cookie. */
  async rotateSession(
    session: SessionRecord,
    changes: { user?: JsonObject; authenticatedAt?: number } = {},
  ): Promise<StartedSession> {
    const rotated = await this.rotate(session, changes);
    return { session: rotated.session, setCookie: [this.sessionCookie.serialize(rotated.token)] };
  }

  /** 303 to login for HTML navigations, 401 JSON for API calls, 503 when the store is down. */
  private deny(info: RequestInfo, reason: string): Denial {
    const html = wantsHtml(info);
    if (reason === 'unavailable') {
      return {
        status: 503,
        headers: {
          'cache-control': 'no-store',
          'retry-after': String(RETRY_AFTER_SECONDS),
          'content-type': html ? 'text/html; charset=utf-8' : 'application/json',
        },
        body: html
          ? '<!doctype html><title>Unavailable</title><p>Sign-in is temporarily unavailable. Please retry shortly.</p>'
          : '{"error":"unavailable"}',
      };
    }
    if (!html) {
      return {
        status: 401,
        headers: { 'cache-control': 'no-store', 'content-type': 'application/json' },
        body: '{"error":"unauthenticated"}',
      };
    }
    const target = info.method === 'GET' || info.method === 'HEAD' ? pathOf(info.url) : null;
    const next = safeNextPath(target && withoutTokenLikeParams(target));
    const location =
      next && next !== this.loginPath
        ? `${this.loginPath}?next=${encodeURIComponent(next)}`
        : this.loginPath;
    return {
      status: 303,
      headers: {
        'cache-control': 'no-store',
        location,
        'content-type': 'text/html; charset=utf-8',
      },
      body: `<!doctype html><title>Sign in</title><p><a href="${escapeHtml(location)}">Sign in</a> to continue.</p>`,
    };
  }
}

/** Login fields as strings within bounds, or null: decided before any hashing. */
function readLoginInput(credentials: Credentials): { username: string; password: string } | null {
  const username = credentials?.username;
  const password = credentials?.password;
  if (typeof username !== 'string' || typeof password !== 'string') return null;
  if (username.trim().length === 0 || username.length > MAX_LOGIN_USERNAME) return null;
  const problem = passwordProblem(password);
  if (problem === 'missing' || problem === 'too_long') return null;
  return { username: username.normalize('NFC').trim(), password };
}

/** The user snapshot kept in a session, so a request needs no user lookup. */
function snapshotOf(user: { id: string; username: string }): JsonObject {
  return { id: user.id, username: user.username };
}

function infoOf(record: UserRecord): UserInfo {
  const { id, username, createdAt, disabled } = record;
  return { id, username, createdAt, disabled };
}

/** Reads what latchkey needs from a Web `Request`. */
export function requestInfoOf(request: Request): RequestInfo {
  return {
    method: request.method,
    url: request.url,
    cookie: request.headers.get('cookie'),
    accept: request.headers.get('accept'),
    secFetchMode: request.headers.get('sec-fetch-mode'),
  };
}

/** A Web `Response` for a denial, with any cookies to set. */
export function toResponse(denial: Denial, setCookie: readonly string[] = []): Response {
  const headers = new Headers(denial.headers);
  for (const value of setCookie) headers.append('set-cookie', value);
  return new Response(denial.body, { status: denial.status, headers });
}

/** A browser navigation or page load, as opposed to an API call. */
function wantsHtml(info: RequestInfo): boolean {
  const accept = info.accept ?? '';
  if (accept.includes('application/json')) return false;
  if (info.secFetchMode === 'navigate' || accept.includes('text/html')) return true;
  return (info.method === 'GET' || info.method === 'HEAD') && info.secFetchMode === null;
}

/**
 * A same-origin path to return to after login, or null. Only a path that starts with one `/`
 * qualifies: `//host`, backslashes (`/\host`), schemes, control characters and oversize values are dropped.
 */
export function safeNextPath(value: string | null | undefined): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return null;
  if (!value.startsWith('/') || value.startsWith('//')) return null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return null;
  return value;
}

/**
 * The path without query parameters whose value holds something shaped like a token: a token
 * pasted into a URL (`?sid=…`) is never written back into a redirect.
 */
function withoutTokenLikeParams(path: string): string {
  const queryAt = path.indexOf('?');
  if (queryAt === -1) return path;
  const query = new URLSearchParams(path.slice(queryAt + 1));
  for (const [name, value] of [...query]) {
    if (/[A-Za-z0-9_-]{43}/.test(value)) query.delete(name);
  }
  const rest = query.toString();
  return rest ? `${path.slice(0, queryAt)}?${rest}` : path.slice(0, queryAt);
}

/** The path and query of a request target, which may be an absolute URL. */
function pathOf(target: string): string | null {
  if (target.startsWith('/')) return target;
  try {
    const url = new URL(target);
    return url.pathname + url.search;
  } catch {
    return null;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
