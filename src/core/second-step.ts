import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { usernameKey } from './credentials.js';
import { ConfigError } from './errors.js';
import type { EventListener } from './events.js';
import type { Login } from './login.js';
import type { LoginContext, LoginResult, SecondFactorMethod, Throttled } from './login-types.js';
import type { Ceremony, Passkeys } from './passkeys.js';

/** A login that started its session. */
export type LoggedIn = LoginResult & { readonly ok: true };

import type { PasswordCheck } from './password-check.js';
import type { PendingLogins } from './pending-login.js';
import type { CodeProof, SecondFactors } from './second-factors.js';
import type { AuthMethod, SessionRecord } from './store.js';

/** A passkey assertion (`AuthenticationResponseJSON` from `@simplewebauthn/browser`). */
export interface PasskeyProof {
  readonly type: 'passkey';
  readonly response: unknown;
}

/** What completes a pending login or steps a session up. */
export type SecondFactorProof = CodeProof | PasskeyProof;

/**
 * Checks passkey assertions against the challenge the request's cookies carry: implemented by
 * `Passkeys`. `userId` null asks for any account's passkey (a passwordless login).
 */
export interface PasskeyVerifier {
  verify(
    response: unknown,
    cookieHeader: string | null,
    userId: string | null,
  ): Promise<
    | { readonly ok: true; readonly userId: string; readonly amr: readonly AuthMethod[] }
    | { readonly ok: false }
  >;
}

/** Why a second factor was not accepted. */
export type SecondFactorFailure =
  | {
      readonly ok: false;
      /**
       * `no_pending_login`: no live pending login in this browser (expired, or never started).
       * `invalid_credentials`: the account was disabled or deleted while the login waited.
       */
      readonly error: 'invalid_code' | 'no_pending_login' | 'invalid_credentials';
      readonly setCookie: readonly string[];
    }
  | (Throttled & { readonly setCookie: readonly string[] });

export type StepUp =
  | { readonly ok: true; readonly session: SessionRecord; readonly setCookie: readonly string[] }
  | { readonly ok: false; readonly error: 'invalid_code' }
  | Throttled;

export interface SecondStepParts {
  readonly login: Login;
  readonly factors: SecondFactors;
  readonly pending: PendingLogins;
  readonly passkeys: Passkeys | null;
  readonly passwords: PasswordCheck;
  readonly now: () => number;
  readonly emit: EventListener;
}

/**
 * The second half of a two-factor login, and step-up: a session that proves a second factor is
 * rotated to assurance level 2 (a new id, so a token seen at level 1 never holds level 2).
 */
export class SecondStep {
  constructor(private readonly parts: SecondStepParts) {}

  /** The methods the request's pending login can be completed with, or null when it has none. */
  async pendingMethods(cookieHeader: string | null): Promise<readonly SecondFactorMethod[] | null> {
    const pending = this.parts.pending.read(cookieHeader);
    if (!pending) return null;
    const status = await this.parts.factors.status(pending.userId);
    const methods: SecondFactorMethod[] = [];
    if (status.totp) methods.push('totp');
    if (status.passkeys.length > 0) methods.push('passkey');
    if (status.recoveryCodesLeft > 0) methods.push('recovery');
    return methods;
  }

  /**
   * Options for a passkey assertion that completes the request's pending login: null when it has
   * none (or passkeys are off).
   */
  async pendingPasskeyOptions(
    cookieHeader: string | null,
  ): Promise<Ceremony<PublicKeyCredentialRequestOptionsJSON> | null> {
    const pending = this.parts.pending.read(cookieHeader);
    const { passkeys } = this.parts;
    if (!pending || !passkeys) return null;
    return passkeys.beginAuthentication(pending.userId);
  }

  /**
   * A passwordless login: a passkey assertion (answering `Passkeys.beginAuthentication(null)`)
   * that verified its user starts a session at level 2 for the account the passkey names. Every
   * failure is `invalid_credentials`.
   */
  async loginWithPasskey(response: unknown, context: LoginContext = {}): Promise<LoginResult> {
    const { passkeys, passwords, login, factors, emit } = this.parts;
    if (!passkeys) {
      throw new ConfigError('secondFactor.passkeys: this needs passkeys (secondFactor.passkeys)');
    }
    const verified = await passkeys.verify(response, context.cookie ?? null, null);
    if (!verified.ok) return { ok: false, error: 'invalid_credentials' };
    const { userId } = verified;
    const throttled = await factors.countAttempt(userId);
    if (throttled) return throttled;
    const user = await passwords.rememberedUser(userId);
    if (!user) {
      const ip = context.ip ?? null;
      emit({ type: 'login_failed', userId, ip, client: ip === null ? 'unknown_ip' : 'ip' });
      return { ok: false, error: 'invalid_credentials' };
    }
    const key = typeof user.username === 'string' ? usernameKey(user.username) : userId;
    const account = {
      userId,
      user,
      key,
      unchanged: async () => (await passwords.rememberedUser(userId)) !== null,
    };
    const proof = { aal: 2, amr: verified.amr, via: 'passkey', remember: false } as const;
    return login.finish(account, proof, context);
  }

  /**
   * Completes the request's pending login with a second factor: the session starts at assurance
   * level 2 (and the remember-me token the login asked for is issued). The pending login ends.
   */
  async complete(
    proof: SecondFactorProof,
    context: LoginContext = {},
  ): Promise<LoggedIn | SecondFactorFailure> {
    const { pending, login, passwords, emit } = this.parts;
    const waiting = pending.read(context.cookie);
    const ended = [pending.cookie.blank()];
    if (!waiting) return { ok: false, error: 'no_pending_login', setCookie: ended };
    const { userId } = waiting;
    const checked = await this.check(userId, proof, context);
    if (!checked.ok) {
      // A wrong code leaves the pending login to be tried again, within the code limits.
      if (checked.error === 'invalid_code') {
        emit({ type: 'second_factor_failed', userId, ip: context.ip ?? null });
      }
      return { ...checked, setCookie: [] };
    }
    const account = {
      userId,
      user: waiting.user,
      key: waiting.key,
      // Still allowed in: not disabled or deleted while the pending login waited.
      unchanged: async () => (await passwords.rememberedUser(userId)) !== null,
    };
    const amr = methodsOf(['pwd', ...checked.amr]);
    const proofOf = { aal: 2, amr, via: 'second_factor', remember: waiting.remember } as const;
    const result = await login.finish(account, proofOf, context);
    if (!result.ok) return { ok: false, error: 'invalid_credentials', setCookie: ended };
    return { ...result, setCookie: [...result.setCookie, ...ended] };
  }

  /**
   * Raises `session` to assurance level 2 with a second factor of its user: rotated, with the
   * proof's methods added and `authenticatedAt` now (a second factor is a re-authentication).
   */
  async stepUp(
    session: SessionRecord,
    proof: SecondFactorProof,
    context: LoginContext = {},
  ): Promise<StepUp> {
    const checked = await this.check(session.userId, proof, context);
    if (!checked.ok) {
      if (checked.error === 'invalid_code') {
        const { userId } = session;
        this.parts.emit({ type: 'second_factor_failed', userId, ip: context.ip ?? null });
      }
      return checked;
    }
    const rotated = await this.parts.login.rotateSession(session, {
      aal: 2,
      amr: methodsOf([...session.amr, ...checked.amr]),
      authenticatedAt: this.parts.now(),
    });
    if (!rotated) return { ok: false, error: 'invalid_code' };
    this.parts.emit({ type: 'stepped_up', session: rotated.session });
    return { ok: true, ...rotated };
  }

  private async check(
    userId: string,
    proof: SecondFactorProof,
    context: LoginContext,
  ): Promise<
    | { readonly ok: true; readonly amr: readonly AuthMethod[] }
    | { readonly ok: false; readonly error: 'invalid_code' }
    | Throttled
  > {
    const { factors, passkeys } = this.parts;
    if (proof?.type === 'totp' || proof?.type === 'recovery')
      return factors.checkCode(userId, proof);
    if (proof?.type !== 'passkey' || !passkeys) return { ok: false, error: 'invalid_code' };
    const throttled = await factors.countAttempt(userId);
    if (throttled) return throttled;
    const verified = await passkeys.verify(proof.response, context.cookie ?? null, userId);
    return verified.ok ? { ok: true, amr: verified.amr } : { ok: false, error: 'invalid_code' };
  }
}

/** `amr` without repeats, with `mfa` added when it holds more than one kind of factor. */
export function methodsOf(amr: readonly AuthMethod[]): readonly AuthMethod[] {
  const methods = new Set<AuthMethod>(amr.filter((method) => method !== 'mfa'));
  const knowledge = methods.has('pwd') ? 1 : 0;
  const possession = methods.has('otp') || methods.has('hwk') || methods.has('swk') ? 1 : 0;
  if (knowledge + possession > 1) methods.add('mfa');
  return [...methods];
}
