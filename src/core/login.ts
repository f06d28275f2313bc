import { type Accounts, snapshotOf, type UserInfo } from './accounts.js';
import type { HostCookie } from './cookies.js';
import { CredentialError, passwordProblem, readLoginInput, usernameKey } from './credentials.js';
import type { DeviceCookies } from './devices.js';
import { callStore } from './errors.js';
import type { EventListener } from './events.js';
import type {
  Credentials,
  LoginContext,
  LoginProof,
  LoginResult,
  Reauthentication,
  SecondFactorMethod,
  SecondFactorRequired,
  SignupResult,
  StartedSession,
  Throttled,
  VerifiedAccount,
} from './login-types.js';
import type { Passkeys } from './passkeys.js';
import { confirmed, noUsers, type PasswordCheck } from './password-check.js';
import type { PendingLogins } from './pending-login.js';
import type { RememberTokens } from './remember.js';
import { restoreSession } from './restore.js';
import type { SecondFactors } from './second-factors.js';
import type { NewSession, SessionChanges, Sessions } from './sessions.js';
import type { SignOut } from './sign-out.js';
import type { AuthMethod, JsonObject, SessionRecord } from './store.js';

import type { AttemptClient, LoginThrottle } from './throttle.js';

/** What a login is made of; the facade builds each part from its options. */
export interface LoginParts {
  readonly sessions: Sessions;
  readonly sessionCookie: HostCookie;
  readonly passwords: PasswordCheck;
  /** Latchkey's own accounts, for sign-up; null when the app keeps its own. */
  readonly accounts: Accounts | null;
  readonly throttle: LoginThrottle | null;
  /** Device cookies for the throttle (OWASP's scheme); null when the throttle has no secret. */
  readonly devices: DeviceCookies | null;
  readonly remember: RememberTokens | null;
  readonly signOut: SignOut;
  readonly reauthWindow: number;
  /** Second factors, the pending logins waiting for them and passkeys; null when the app has none. */
  readonly secondFactors: {
    readonly factors: SecondFactors;
    readonly pending: PendingLogins;
    readonly passkeys: Passkeys | null;
  } | null;
  readonly now: () => number;
  readonly emit: EventListener;
}

/**
 * Logging in and out with cookies: password logins (throttled), sign-up, re-authentication, and
 * remember-me tokens (issued at login, used when the session cookie is gone, forgotten at logout).
 */
export class Login {
  constructor(private readonly parts: LoginParts) {}

  /**
   * Checks a username and password and starts a session. Every failure to match is the same
   * `invalid_credentials`, and takes as long whether or not the account exists.
   */
  async login(credentials: Credentials, context: LoginContext = {}): Promise<LoginResult> {
    const input = readLoginInput(credentials);
    if (!input) return { ok: false, error: 'invalid_request' };
    const { passwords, emit } = this.parts;
    const throttleKey = usernameKey(input.username);
    const device = this.deviceOf(context, throttleKey);
    const throttled = await this.countAttempt(throttleKey, null, context, device);
    if (throttled) return throttled;
    const check = await passwords.check(input.username, input.password);
    if (!check.user) {
      emit({ type: 'login_failed', userId: check.userId, ...clientOf(context, device) });
      return { ok: false, error: 'invalid_credentials' };
    }
    await this.attemptSucceeded(throttleKey, device);
    const { userId, user, unchanged } = check;
    const account = { userId, user, key: throttleKey, unchanged };
    const wantsRemember = credentials.remember === true;
    const pending = await this.secondFactorRequired(account, wantsRemember);
    if (pending) return pending;
    const proof = { aal: 1, amr: PASSWORD, via: 'password', remember: wantsRemember } as const;
    return this.finish(account, proof, context);
  }

  /**
   * Signs in an account whose credentials all checked out: starts the session (ending any the
   * request carried), issues a remember-me token when asked, and then re-checks the account.
   */
  async finish(
    account: VerifiedAccount,
    proof: LoginProof,
    context: LoginContext,
  ): Promise<LoginResult> {
    const { remember, emit } = this.parts;
    const { userId, user } = account;
    const { ip, userAgent, cookie } = context;
    const input = { user, ip, userAgent, aal: proof.aal, amr: proof.amr };
    const started = await this.startSession(userId, input, cookie ?? null);
    const result = this.withDeviceCookie(
      { ok: true as const, ...started, user: started.session.user },
      account.key,
    );
    const remembered = await this.rememberAtLogin(userId, proof.remember, context);
    // Written first, checked second: a password change, disable or delete that ran during the
    // verification is seen here, or comes later and ends what was just written.
    const undo = async () => {
      const value = remembered.value;
      if (remember && value !== null) await callStore(() => remember.forget(value));
      await this.parts.sessions.revoke(result.session.id);
    };
    if (!(await confirmed(account.unchanged, undo))) {
      const device = this.deviceOf(context, account.key);
      emit({ type: 'login_failed', userId, ...clientOf(context, device) });
      return { ok: false, error: 'invalid_credentials' };
    }
    emit({ type: 'login_succeeded', session: result.session, via: proof.via });
    return { ...result, setCookie: [...result.setCookie, ...remembered.setCookie] };
  }

  /** The pending login that waits for the account's second factor, or null when it has none. */
  private async secondFactorRequired(
    account: VerifiedAccount,
    remember: boolean,
  ): Promise<SecondFactorRequired | null> {
    const second = this.parts.secondFactors;
    if (!second) return null;
    const status = await second.factors.status(account.userId);
    if (!status.enabled) return null;
    const methods: SecondFactorMethod[] = [];
    if (status.totp) methods.push('totp');
    if (status.passkeys.length > 0) methods.push('passkey');
    if (status.recoveryCodesLeft > 0) methods.push('recovery');
    const { userId, user, key } = account;
    const { setCookie } = second.pending.start({ userId, user, key, remember });
    return { ok: false, error: 'second_factor_required', methods, setCookie: [setCookie] };
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
    const account = await this.parts.passwords.accountOf(session);
    if (!account) return { ok: false, error: 'reauthentication_required' };
    const device = this.deviceOf(context, account.key);
    const throttled = await this.countAttempt(account.key, session.userId, context, device);
    if (throttled) return throttled;
    if (!(await account.verify(password as string))) {
      const client = clientOf(context, device);
      this.parts.emit({ type: 'login_failed', userId: session.userId, ...client });
      return { ok: false, error: 'reauthentication_required' };
    }
    await this.attemptSucceeded(account.key, device);
    const rotated = await this.rotateSession(session, { authenticatedAt: this.parts.now() });
    if (!rotated) return { ok: false, error: 'reauthentication_required' };
    // As at login: the account may have changed while the password was checked.
    const undo = () => this.parts.sessions.revoke(rotated.session.id);
    if (!(await confirmed(account.unchanged, undo))) {
      return { ok: false, error: 'reauthentication_required' };
    }
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
      this.parts.now() - session.authenticatedAt <= this.parts.reauthWindow
    );
  }

  /** Creates an account (see `Accounts.createUser`) and logs it in; sign-ups are throttled. */
  async signup(credentials: Credentials, context: LoginContext = {}): Promise<SignupResult> {
    const { accounts, throttle } = this.parts;
    if (!accounts) throw noUsers();
    if (throttle) {
      const outcome = await callStore(() => throttle.signup(context.ip ?? null));
      if (!outcome.allowed) {
        return {
          ok: false,
          error: 'too_many_attempts',
          retryAfterSeconds: outcome.retryAfterSeconds,
        };
      }
    }
    let user: UserInfo;
    try {
      user = await accounts.createUser(credentials?.username, credentials?.password);
    } catch (error) {
      if (!(error instanceof CredentialError)) throw error;
      return { ok: false, error: error.code, message: error.message };
    }
    const started = await this.startLoggedIn(user.id, snapshotOf(user), context);
    return this.withDeviceCookie(started, usernameKey(user.username));
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
    const { sessions, sessionCookie } = this.parts;
    const previous = sessionCookie.read(cookieHeader);
    if (previous.value !== null) await sessions.logout(previous.value);
    const { session, token } = await sessions.create(userId, input);
    return { session, setCookie: [sessionCookie.serialize(token)] };
  }

  /**
   * Logs out whoever `cookieHeader` names and gives the cookies that clear it in the browser:
   * the session's, the remember-me token's, and a login waiting for its second factor or a
   * passkey ceremony when the request carries one (nothing of a sign-in outlives the logout).
   */
  async endSession(
    cookieHeader: string | null,
  ): Promise<{ session: SessionRecord | null; setCookie: readonly string[] }> {
    const { sessions, sessionCookie, remember, secondFactors } = this.parts;
    const current = sessionCookie.read(cookieHeader);
    const session = current.value === null ? null : await sessions.logout(current.value);
    const setCookie = [sessionCookie.blank()];
    if (remember) {
      const token = remember.cookie.read(cookieHeader).value;
      await callStore(() => remember.forget(token));
      setCookie.push(remember.cookie.blank());
    }
    for (const cookie of [secondFactors?.pending.cookie, secondFactors?.passkeys?.cookie]) {
      if (cookie && cookie.read(cookieHeader).reason !== 'missing') setCookie.push(cookie.blank());
    }
    return { session, setCookie };
  }

  /**
   * Replaces a session's token (privilege change) and gives the new cookie; null, with no new
   * session, when the session is already gone (see `Sessions.rotate`).
   */
  async rotateSession(
    session: SessionRecord,
    changes: SessionChanges = {},
  ): Promise<StartedSession | null> {
    const rotated = await this.parts.sessions.rotate(session, changes);
    if (!rotated) return null;
    return {
      session: rotated.session,
      setCookie: [this.parts.sessionCookie.serialize(rotated.token)],
    };
  }

  /** See {@link restoreSession}. */
  restore(
    cookieHeader: string | null,
    client: { readonly ip?: string | null; readonly userAgent?: string | null },
  ): Promise<{ session: SessionRecord | null; setCookie: readonly string[] }> {
    return restoreSession(this.parts, cookieHeader, client);
  }

  /**
   * The remember-me part of a password login: a token this browser held from an earlier login is
   * replaced, never left behind; a new one (`value`) is issued when the login asked for it.
   */
  private async rememberAtLogin(
    userId: string,
    wanted: boolean,
    context: LoginContext,
  ): Promise<{ value: string | null; setCookie: readonly string[] }> {
    const remember = this.parts.remember;
    if (!remember) return { value: null, setCookie: [] };
    const previous = remember.cookie.read(context.cookie).value;
    if (previous !== null) await callStore(() => remember.forget(previous));
    if (!wanted) {
      return { value: null, setCookie: previous === null ? [] : [remember.cookie.blank()] };
    }
    const issued = await callStore(() => remember.issue(userId));
    return { value: issued.value, setCookie: [issued.setCookie] };
  }

  /** Counts a login attempt; gives the refusal when over a limit, else null. */
  private async countAttempt(
    key: string,
    userId: string | null,
    context: LoginContext,
    device: string | null,
  ): Promise<Throttled | null> {
    const throttle = this.parts.throttle;
    if (!throttle) return null;
    const outcome = await callStore(() => throttle.attempt(key, context.ip ?? null, device));
    if (outcome.allowed) return null;
    const { retryAfterSeconds } = outcome;
    const client = clientOf(context, device);
    this.parts.emit({ type: 'login_throttled', userId, ...client, retryAfterSeconds });
    return { ok: false, error: 'too_many_attempts', retryAfterSeconds };
  }

  private async attemptSucceeded(key: string, device: string | null): Promise<void> {
    const throttle = this.parts.throttle;
    if (throttle) await callStore(() => throttle.succeeded(key, device));
  }

  /** The request's verified device id for the account `key`, or null (an untrusted client). */
  private deviceOf(context: LoginContext, key: string): string | null {
    return this.parts.devices?.deviceOf(context.cookie, key) ?? null;
  }

  /** A logged-in browser becomes (or stays) a known device of the account: a fresh cookie. */
  private withDeviceCookie<T extends StartedSession>(started: T, key: string): T {
    const devices = this.parts.devices;
    if (!devices) return started;
    return { ...started, setCookie: [...started.setCookie, devices.issue(key)] };
  }

  private async startLoggedIn(
    userId: string,
    user: JsonObject,
    context: LoginContext,
  ): Promise<StartedSession & { ok: true; user: JsonObject }> {
    const { ip, userAgent, cookie } = context;
    const input = { user, ip, userAgent, amr: PASSWORD };
    const started = await this.startSession(userId, input, cookie ?? null);
    return { ok: true, ...started, user: started.session.user };
  }
}

/** The event fields that say how an attempt was counted (see {@link AttemptClient}). */
function clientOf(
  context: LoginContext,
  device: string | null,
): { ip: string | null; client: AttemptClient } {
  const ip = context.ip ?? null;
  return { ip, client: device !== null ? 'device' : ip === null ? 'unknown_ip' : 'ip' };
}

const PASSWORD: readonly AuthMethod[] = Object.freeze(['pwd']);
