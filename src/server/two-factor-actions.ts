import {
  ConfigError,
  type Latchkey,
  type LoggedIn,
  methodsOf,
  type SecondFactorFailure,
  type SecondFactorProof,
  type SecondFactors,
  type SessionRecord,
  type StepUp,
} from '../index.js';
import type { Confirmed, Unconfirmed } from './actions.js';
import { type Context, loginContext } from './request.js';
import type { AuthObserver, Signedin, Site } from './site.js';

/** A change to the account's second factors may not go ahead yet. */
export type Unsecured =
  | Unconfirmed
  | { readonly ok: false; readonly error: 'second_factor_required' };

/** A second step: a pending login completed, or the caller's session stepped up. */
export type SecondStepOutcome =
  | LoggedIn
  | SecondFactorFailure
  | StepUp
  /** No pending login and no session: start at the login page. */
  | {
      readonly ok: false;
      readonly error: 'no_pending_login';
      readonly setCookie: readonly string[];
    };

/** The server's two-factor actions, each written once for the form and the JSON routes. */
export class TwoFactorActions {
  readonly factors: SecondFactors;
  private readonly latchkey: Latchkey;
  private readonly observer: AuthObserver | undefined;

  constructor(site: Site) {
    this.latchkey = site.latchkey;
    this.observer = site.observer;
    if (!this.latchkey.secondFactors) throw new ConfigError('the server needs second factors');
    this.factors = this.latchkey.secondFactors;
  }

  /**
   * Completes the request's pending login, or steps the caller's session up. `session` is the
   * request's session when it has one (a step-up), checked only when no login is pending.
   */
  async secondStep(
    ctx: Context,
    proof: SecondFactorProof,
    session: SessionRecord | null,
  ): Promise<SecondStepOutcome> {
    const context = loginContext(ctx);
    if ((await this.latchkey.pendingSecondFactor(ctx.cookie)) !== null) {
      const outcome = await this.latchkey.completeLogin(proof, context);
      if (outcome.ok) this.observer?.actingAs(ctx.req, outcome.session.userId);
      return outcome;
    }
    if (!session) return { ok: false, error: 'no_pending_login', setCookie: [] };
    return this.latchkey.stepUp(session, proof, context);
  }

  /**
   * A change to the caller's second factors goes ahead only at assurance level 2 when the account
   * has one (so a stolen password or remember-me cookie cannot remove it), and after a recent
   * password login or with the current `password`.
   */
  async secure(
    ctx: Context,
    signedin: Signedin,
    password: unknown,
  ): Promise<Confirmed | Unsecured> {
    const { session } = signedin;
    const status = await this.factors.status(session.userId);
    if (status.enabled && session.aal < 2) return { ok: false, error: 'second_factor_required' };
    return this.latchkey.reauthenticate(session, password, loginContext(ctx));
  }

  /**
   * Turns a confirmed enrolment on; the session that proved its first code is at level 2 now.
   * Gives the new recovery codes (empty when the account had some), or null for a wrong code.
   */
  async confirmTotp(
    signedin: Signedin,
    factorId: unknown,
    code: unknown,
  ): Promise<
    | {
        ok: true;
        recoveryCodes: readonly string[];
        session: SessionRecord;
        setCookie: readonly string[];
      }
    | { ok: false; error: 'invalid_code' }
    | { ok: false; error: 'too_many_attempts'; retryAfterSeconds: number }
  > {
    const { session } = signedin;
    if (typeof factorId !== 'string') return { ok: false, error: 'invalid_code' };
    const confirmed = await this.factors.confirmTotp(session.userId, factorId, code);
    if (!confirmed.ok) return confirmed;
    const rotated = await this.latchkey.rotateSession(session, {
      aal: 2,
      amr: methodsOf([...session.amr, 'otp']),
    });
    if (!rotated) return { ok: false, error: 'invalid_code' };
    return { ok: true, recoveryCodes: confirmed.recoveryCodes, ...rotated };
  }
}
