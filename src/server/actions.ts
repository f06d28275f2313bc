import {
  CredentialError,
  type Credentials,
  type LoginResult,
  type Reauthentication,
  type SessionRecord,
  type SignupResult,
} from '../index.js';
import { CLEAR_SITE_DATA } from './answers.js';
import { type Context, loginContext } from './request.js';
import type { Signedin, SignOut, Site } from './site.js';

// One implementation of each sensitive action, for the form route and the JSON route alike:
// the routes only parse their input and present the outcome.

/** Why a sensitive action did not go ahead: the password is needed (again), or too many tries. */
export type Unconfirmed = Exclude<Reauthentication, { ok: true }>;

/** A sensitive action went ahead: the caller's session, rotated if the password was just given. */
export interface Confirmed {
  readonly ok: true;
  readonly session: SessionRecord;
  readonly setCookie: readonly string[];
}

export type Revocation =
  | Unconfirmed
  | { readonly ok: false; readonly error: 'not_found' }
  /** The caller's own session: a logout, which needs no password. */
  | { readonly ok: true; readonly ended: 'this device'; readonly signOut: SignOut }
  | (Confirmed & { readonly ended: 'other' });

export type PasswordChange =
  | Unconfirmed
  /** `problem`: why the new password cannot be used; null when it was set. */
  | (Confirmed & { readonly problem: CredentialError | null });

export interface NewPassword {
  /** The current password, needed unless the last password login was recent. */
  readonly password: unknown;
  readonly newPassword: unknown;
  readonly signOutOthers: boolean;
}

/** The server's sensitive actions, each written once over the engine. */
export class Actions {
  constructor(private readonly site: Site) {}

  /** A password login, told to the observer however it ends. */
  async login(ctx: Context, credentials: Credentials): Promise<LoginResult> {
    const observer = this.site.observer;
    let result: LoginResult;
    try {
      result = await this.site.latchkey.login(credentials, loginContext(ctx));
    } catch (error) {
      observer?.loginEnded(ctx.req, 'error');
      throw error;
    }
    observer?.loginEnded(ctx.req, result);
    return result;
  }

  async signup(ctx: Context, credentials: Credentials): Promise<SignupResult> {
    const result = await this.site.latchkey.signup(credentials, loginContext(ctx));
    if (result.ok) this.site.observer?.actingAs(ctx.req, result.session.userId);
    return result;
  }

  /** Ends the session (and remember-me token) the request carries, if any. */
  async logout(ctx: Context): Promise<SignOut> {
    const { session, setCookie } = await this.site.latchkey.endSession(ctx.cookie);
    if (session) this.site.observer?.actingAs(ctx.req, session.userId);
    return { setCookie, headers: CLEAR_SITE_DATA };
  }

  async logoutEverywhere(signedin: Signedin): Promise<SignOut> {
    await this.site.latchkey.logoutEverywhere(signedin.session.userId);
    return this.signedOut();
  }

  /** Ends one of the caller's own sessions; any other id is not found. */
  async revokeSession(
    ctx: Context,
    signedin: Signedin,
    id: unknown,
    password: unknown,
  ): Promise<Revocation> {
    const target = await this.site.ownSession(signedin.session, id);
    if (!target) return { ok: false, error: 'not_found' };
    // Revoking this device is logging out: its remember-me token goes too.
    if (target.id === signedin.session.id) {
      return { ok: true, ended: 'this device', signOut: await this.logout(ctx) };
    }
    const confirmed = await this.confirm(ctx, signedin, password);
    if (!confirmed.ok) return confirmed;
    await this.site.latchkey.revoke(target.id);
    return { ...confirmed, ended: 'other' };
  }

  /** Ends every session of the caller's but this one. */
  async revokeOthers(
    ctx: Context,
    signedin: Signedin,
    password: unknown,
  ): Promise<Confirmed | Unconfirmed> {
    const confirmed = await this.confirm(ctx, signedin, password);
    if (!confirmed.ok) return confirmed;
    const { userId, id } = confirmed.session;
    await this.site.latchkey.revokeAllForUser(userId, { except: id });
    return confirmed;
  }

  /** Sets a new password once the caller is confirmed; keeps this session in any case. */
  async changePassword(
    ctx: Context,
    signedin: Signedin,
    change: NewPassword,
  ): Promise<PasswordChange> {
    const confirmed = await this.confirm(ctx, signedin, change.password);
    if (!confirmed.ok) return confirmed;
    try {
      await this.site.latchkey.changePassword(confirmed.session.userId, change.newPassword, {
        keepSession: confirmed.session.id,
        signOutOthers: change.signOutOthers,
      });
    } catch (error) {
      if (error instanceof CredentialError) return { ...confirmed, problem: error };
      throw error;
    }
    return { ...confirmed, problem: null };
  }

  /** Blocks the caller's logins and ends all their sessions, this one included. */
  async disableAccount(
    ctx: Context,
    signedin: Signedin,
    password: unknown,
  ): Promise<Unconfirmed | { readonly ok: true; readonly signOut: SignOut }> {
    const confirmed = await this.confirm(ctx, signedin, password);
    if (!confirmed.ok) return confirmed;
    await this.site.latchkey.disableUser(confirmed.session.userId);
    return { ok: true, signOut: this.signedOut() };
  }

  /**
   * Goes ahead after a recent password login or with the right current `password`; the password
   * guesses count against the account's login limit.
   */
  private async confirm(
    ctx: Context,
    signedin: Signedin,
    password: unknown,
  ): Promise<Confirmed | Unconfirmed> {
    return this.site.latchkey.reauthenticate(signedin.session, password, loginContext(ctx));
  }

  /** Clears this browser's cookies once its sessions are already ended. */
  private signedOut(): SignOut {
    const latchkey = this.site.latchkey;
    const setCookie = [latchkey.sessionCookie.blank()];
    if (latchkey.rememberCookie) setCookie.push(latchkey.rememberCookie.blank());
    return { setCookie, headers: CLEAR_SITE_DATA };
  }
}
