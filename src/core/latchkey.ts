import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import {
  type Denial,
  type DenialReason,
  denialFor,
  type RequestInfo,
  requestInfoOf,
  secondFactorDenial,
} from '../http/shared.js';
import { Accounts, type UserInfo } from './accounts.js';
import { requireCapability } from './capabilities.js';
import { HostCookie } from './cookies.js';
import { DeviceCookies } from './devices.js';
import { parseDuration } from './duration.js';
import { ConfigError, StoreUnavailableError } from './errors.js';
import { eventSink } from './events.js';
import { Login } from './login.js';
import type {
  Credentials,
  LoginContext,
  LoginResult,
  Reauthentication,
  SecondFactorMethod,
  SignupResult,
  StartedSession,
} from './login-types.js';
import type { Authentication, LatchkeyOptions } from './options.js';
import type { Ceremony, Passkeys } from './passkeys.js';
import { appCredentials, NO_PASSWORDS, noUsers } from './password-check.js';
import { rememberTokensOf } from './remember.js';
import { secondFactorsOf } from './second-factor-setup.js';
import type { SecondFactors } from './second-factors.js';
import {
  type LoggedIn,
  type SecondFactorFailure,
  type SecondFactorProof,
  SecondStep,
  type StepUp,
} from './second-step.js';
import {
  type IssuedSession,
  type NewSession,
  type SessionChanges,
  Sessions,
  type Validation,
} from './sessions.js';
import { SignOut } from './sign-out.js';
import type { AssuranceLevel, JsonObject, SessionRecord } from './store.js';
import { LoginThrottle } from './throttle.js';

export type { UserInfo } from './accounts.js';
export type {
  Credentials,
  LoginContext,
  LoginResult,
  Reauthentication,
  SecondFactorMethod,
  SecondFactorRequired,
  SignupResult,
  StartedSession,
  Throttled,
} from './login-types.js';
export type { Authentication, LatchkeyOptions, SecondFactorOptions } from './options.js';

/** No cookie to set: shared, so a validated request allocates no array for it. */
const NO_COOKIES: readonly string[] = Object.freeze([]);

/**
 * Session auth for one app, framework-free: the session engine ({@link Sessions}), latchkey's
 * accounts and the login flows behind one object, with cookies and request-level answers. Every
 * method delegates to the module that owns the job; `authenticate` alone is written here, where
 * the engine's answer meets its HTTP rendering.
 */
export class Latchkey {
  readonly sessionCookie: HostCookie;
  /** The remember-me cookie, or null when remember-me is off. */
  readonly rememberCookie: HostCookie | null;
  readonly loginPath: string;
  readonly reauthWindow: number;
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  /** The interval actually used between refresh writes (see {@link SessionOptions.touchInterval}). */
  readonly touchInterval: number;
  readonly maxSessionsPerUser: number | null;
  readonly secondFactorPath: string;
  /** Second factors of accounts (enrol, list, remove), or null without `secondFactor`. */
  readonly secondFactors: SecondFactors | null;
  /** Passkeys (register, and the options of a login), or null without `secondFactor.passkeys`. */
  readonly passkeys: Passkeys | null;
  private readonly secondStep: SecondStep | null;
  private readonly sessions: Sessions;
  private readonly accounts: Accounts | null;
  private readonly signOut: SignOut;
  private readonly flows: Login;

  constructor(options: LatchkeyOptions) {
    const sessions = new Sessions(options);
    this.sessions = sessions;
    this.idleTimeout = sessions.idleTimeout;
    this.absoluteTimeout = sessions.absoluteTimeout;
    this.touchInterval = sessions.touchInterval;
    this.maxSessionsPerUser = sessions.maxSessionsPerUser;
    const now = options.clock ?? Date.now;
    const allowUnprefixed = options.allowUnprefixedCookieName === true;
    this.sessionCookie = new HostCookie(options.cookieName ?? '__Host-session', {
      allowUnprefixed,
    });
    this.loginPath = options.loginPath ?? '/login';
    this.secondFactorPath = options.secondFactorPath ?? '/login/second-factor';
    if (options.users && options.verifyCredentials) {
      throw new ConfigError(
        'users and verifyCredentials: give one way to check passwords, not both',
      );
    }
    const users = options.users && requireCapability(options.users, 'users', 'users');
    this.reauthWindow = parseDuration(options.reauthWindow ?? '10m', 'reauthWindow');
    const { throttle } = options;
    const throttleStore =
      throttle && requireCapability(throttle.store, 'throttle', 'throttle.store');
    const remember = rememberTokensOf(options.remember, now, allowUnprefixed);
    // A replayed remember-me token means theft: answering it needs every session of the user.
    if (remember) requireCapability(options.store, 'session index', 'remember');
    this.rememberCookie = remember?.cookie ?? null;
    if (this.rememberCookie?.name === this.sessionCookie.name) {
      throw new ConfigError('remember.cookieName: must differ from cookieName');
    }
    this.signOut = new SignOut(options.store, sessions, remember);
    this.accounts = users ? new Accounts(users, this.signOut, now, options.siteName ?? null) : null;
    const { verifyCredentials, isActive } = options;
    if (isActive !== undefined && (!verifyCredentials || typeof isActive !== 'function')) {
      throw new ConfigError('isActive: a function, given together with verifyCredentials');
    }
    const emit = eventSink(options.onEvent);
    const second = secondFactorsOf(options, now, emit, allowUnprefixed);
    this.secondFactors = second?.factors ?? null;
    this.passkeys = second?.passkeys ?? null;
    const passwords =
      this.accounts ??
      (verifyCredentials ? appCredentials(verifyCredentials, isActive ?? null) : NO_PASSWORDS);
    this.flows = new Login({
      sessions,
      sessionCookie: this.sessionCookie,
      passwords,
      accounts: this.accounts,
      throttle: throttleStore ? new LoginThrottle(throttleStore, now, throttle) : null,
      devices:
        throttle?.deviceSecret === undefined ? null : new DeviceCookies(throttle.deviceSecret),
      remember,
      signOut: this.signOut,
      reauthWindow: this.reauthWindow,
      secondFactors: second,
      now,
      emit,
    });
    this.secondStep =
      second && new SecondStep({ login: this.flows, ...second, passwords, now, emit });
  }

  /**
   * Answers who is making `request`: one store read (plus a refresh write at most once per touch
   * interval). Never throws for a bad cookie or a store outage: those become a {@link Denial}.
   */
  async authenticate(request: Request | RequestInfo): Promise<Authentication> {
    const info = request instanceof Request ? requestInfoOf(request) : request;
    try {
      const cookie = this.sessionCookie.read(info.cookie);
      let reason: DenialReason;
      if (cookie.value === null) {
        reason = cookie.reason;
      } else {
        const validation = await this.sessions.validate(cookie.value);
        const session = validation.session;
        if (session) return { ok: true, session, user: session.user, setCookie: NO_COOKIES };
        reason = validation.reason;
      }
      // No valid session cookie: a remember-me cookie may start a session, else the denial.
      const setCookie = reason === 'missing' ? [] : [this.sessionCookie.blank()];
      const restored = await this.flows.restore(info.cookie, info);
      if (restored.session) {
        const { session } = restored;
        return { ok: true, session, user: session.user, setCookie: restored.setCookie };
      }
      setCookie.push(...restored.setCookie);
      return { ok: false, reason, setCookie, denial: denialFor(info, reason, this.loginPath) };
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      const denial = denialFor(info, 'unavailable', this.loginPath);
      return { ok: false, reason: 'unavailable', setCookie: [], denial };
    }
  }

  /**
   * Null when `session` holds assurance level `level`; otherwise the answer for a request that
   * needs it: pages go to `secondFactorPath` (with a safe `next`), API calls get 401
   * `{"error":"second_factor_required"}`.
   */
  requireAal(
    session: SessionRecord,
    level: AssuranceLevel,
    request: Request | RequestInfo,
  ): Denial | null {
    if (session.aal >= level) return null;
    const info = request instanceof Request ? requestInfoOf(request) : request;
    return secondFactorDenial(info, this.secondFactorPath);
  }

  // The session engine (see Sessions).

  /** See {@link Sessions.create}. */
  create(userId: string, input?: NewSession): Promise<IssuedSession> {
    return this.sessions.create(userId, input);
  }

  /** See {@link Sessions.validate}. */
  validate(token: string): Promise<Validation> {
    return this.sessions.validate(token);
  }

  /** See {@link Sessions.peek}. */
  peek(token: string): Promise<SessionRecord | null> {
    return this.sessions.peek(token);
  }

  /** See {@link Sessions.logout}. */
  logout(token: string): Promise<SessionRecord | null> {
    return this.sessions.logout(token);
  }

  /** See {@link Sessions.revoke}. */
  revoke(sessionId: string): Promise<SessionRecord | null> {
    return this.sessions.revoke(sessionId);
  }

  /** See {@link Sessions.revokeAllForUser}. */
  revokeAllForUser(userId: string, options?: { except?: string }): Promise<number> {
    return this.sessions.revokeAllForUser(userId, options);
  }

  /** See {@link Sessions.listSessions}. */
  listSessions(userId: string): Promise<SessionRecord[]> {
    return this.sessions.listSessions(userId);
  }

  /** See {@link Sessions.setData}. */
  setData(sessionId: string, patch: JsonObject): Promise<boolean> {
    return this.sessions.setData(sessionId, patch);
  }

  /** See {@link Sessions.rotate}. */
  rotate(current: SessionRecord, changes?: SessionChanges): Promise<IssuedSession | null> {
    return this.sessions.rotate(current, changes);
  }

  /** See {@link Sessions.deleteExpired}. */
  deleteExpired(): Promise<number> {
    return this.sessions.deleteExpired();
  }

  // Logging in and out with cookies (see Login).

  /** See {@link Login.login}. */
  login(credentials: Credentials, context?: LoginContext): Promise<LoginResult> {
    return this.flows.login(credentials, context);
  }

  /** See {@link SecondStep.complete}; needs `secondFactor`. */
  completeLogin(
    proof: SecondFactorProof,
    context?: LoginContext,
  ): Promise<LoggedIn | SecondFactorFailure> {
    return this.requireSecondStep().complete(proof, context);
  }

  /** See {@link SecondStep.loginWithPasskey}; needs `secondFactor.passkeys`. */
  loginWithPasskey(response: unknown, context?: LoginContext): Promise<LoginResult> {
    return this.requireSecondStep().loginWithPasskey(response, context);
  }

  /** See {@link SecondStep.pendingPasskeyOptions}; needs `secondFactor.passkeys`. */
  pendingPasskeyOptions(
    cookieHeader: string | null,
  ): Promise<Ceremony<PublicKeyCredentialRequestOptionsJSON> | null> {
    return this.requireSecondStep().pendingPasskeyOptions(cookieHeader);
  }

  /** See {@link SecondStep.pendingMethods}; needs `secondFactor`. */
  pendingSecondFactor(cookieHeader: string | null): Promise<readonly SecondFactorMethod[] | null> {
    return this.requireSecondStep().pendingMethods(cookieHeader);
  }

  /** See {@link SecondStep.stepUp}; needs `secondFactor`. */
  stepUp(
    session: SessionRecord,
    proof: SecondFactorProof,
    context?: LoginContext,
  ): Promise<StepUp> {
    return this.requireSecondStep().stepUp(session, proof, context);
  }

  /** See {@link Login.reauthenticate}. */
  reauthenticate(
    session: SessionRecord,
    password: unknown,
    context?: LoginContext,
  ): Promise<Reauthentication> {
    return this.flows.reauthenticate(session, password, context);
  }

  /** See {@link Login.isRecentLogin}. */
  isRecentLogin(session: SessionRecord): boolean {
    return this.flows.isRecentLogin(session);
  }

  /** See {@link Login.signup}. */
  signup(credentials: Credentials, context?: LoginContext): Promise<SignupResult> {
    return this.flows.signup(credentials, context);
  }

  /** See {@link Login.startSession}. */
  startSession(
    userId: string,
    input?: NewSession,
    cookieHeader?: string | null,
  ): Promise<StartedSession> {
    return this.flows.startSession(userId, input, cookieHeader);
  }

  /** See {@link Login.endSession}. */
  endSession(
    cookieHeader: string | null,
  ): Promise<{ session: SessionRecord | null; setCookie: readonly string[] }> {
    return this.flows.endSession(cookieHeader);
  }

  /** See {@link Login.rotateSession}. */
  rotateSession(session: SessionRecord, changes?: SessionChanges): Promise<StartedSession | null> {
    return this.flows.rotateSession(session, changes);
  }

  /**
   * Ends every session and remember-me token of the user ("log out everywhere"). Needs the
   * session store's "session index" capability.
   */
  logoutEverywhere(userId: string): Promise<void> {
    return this.signOut.everywhere(userId);
  }

  // Latchkey's own accounts (see Accounts); each needs the `users` option.

  /** See {@link Accounts.createUser}. */
  async createUser(username: unknown, password: unknown): Promise<UserInfo> {
    return this.requireAccounts().createUser(username, password);
  }

  /** See {@link Accounts.findUser}. */
  async findUser(username: string): Promise<UserInfo | null> {
    return this.requireAccounts().findUser(username);
  }

  /** See {@link Accounts.listUsers}. */
  async listUsers(): Promise<UserInfo[]> {
    return this.requireAccounts().listUsers();
  }

  /** See {@link Accounts.changePassword}. */
  async changePassword(
    userId: string,
    password: unknown,
    options?: { keepSession?: string; signOutOthers?: boolean },
  ): Promise<boolean> {
    return this.requireAccounts().changePassword(userId, password, options);
  }

  /** See {@link Accounts.disableUser}. */
  async disableUser(userId: string): Promise<boolean> {
    return this.requireAccounts().disableUser(userId);
  }

  /** See {@link Accounts.enableUser}. */
  async enableUser(userId: string): Promise<boolean> {
    return this.requireAccounts().enableUser(userId);
  }

  /** See {@link Accounts.deleteUser}. */
  async deleteUser(userId: string): Promise<boolean> {
    return this.requireAccounts().deleteUser(userId);
  }

  private requireSecondStep(): SecondStep {
    if (this.secondStep) return this.secondStep;
    throw new ConfigError(
      'secondFactor: this needs second factors (new Latchkey({ secondFactor }))',
    );
  }

  private requireAccounts(): Accounts {
    if (this.accounts) return this.accounts;
    throw noUsers();
  }
}
