import type { Denial, DenialReason } from '../http/shared.js';
import type { SecondFactorStore, ThrottleStore, UserStore } from './capabilities.js';
import type { Duration } from './duration.js';
import type { PasskeyOptions } from './passkey-options.js';
import type { IsActive, VerifyCredentials } from './password-check.js';
import type { RememberOptions } from './remember.js';
import type { SessionOptions } from './sessions.js';
import type { JsonObject, SessionRecord } from './store.js';
import type { LoginThrottleOptions } from './throttle.js';

export interface LatchkeyOptions extends SessionOptions {
  /** Default `"__Host-session"`; a `__Host-` name makes the browser refuse any Domain or Path trick. */
  cookieName?: string;
  /**
   * Lets `cookieName` and `remember.cookieName` go without the `__Host-` prefix. Without the
   * prefix a sibling subdomain can set or shadow the cookie; default false (a {@link ConfigError}).
   */
  allowUnprefixedCookieName?: boolean;
  /** Where HTML navigations without a session are sent. Default `"/login"`. */
  loginPath?: string;
  /**
   * Accounts kept by latchkey (often the same object as `store`); needs the "users" capability.
   * Excludes `verifyCredentials`.
   */
  users?: UserStore;
  /** For apps with their own user table. Excludes `users`. */
  verifyCredentials?: VerifyCredentials;
  /**
   * With `verifyCredentials`: whether an app user may still be signed in. Checked on every
   * remember-me restore and after every login, so a deleted or disabled user cannot come back.
   */
  isActive?: IsActive;
  /**
   * Login and sign-up attempt limits, counted in a store with the "throttle" capability. Off when
   * absent. `deviceSecret` (at least 32 characters; the same on every process) turns on device
   * cookies: a browser that logged in to an account before is throttled on its own counter, so
   * strangers' wrong guesses cannot lock the owner out. Without it, every client is throttled per
   * account and per IP.
   */
  throttle?: { store: ThrottleStore; deviceSecret?: string | Buffer } & LoginThrottleOptions;
  /** "Remember me" tokens, issued when a login asks for them. Off when absent. */
  remember?: RememberOptions;
  /**
   * How long after a password login sensitive changes (password, revoking sessions, disabling the
   * account) go through without asking for the password again. Default `"10m"`.
   */
  reauthWindow?: Duration;
  /**
   * The site's name, for the password-strength check of latchkey's own accounts: like the
   * username, a word a new password must not lean on ("acme2024!" for Acme).
   */
  siteName?: string;
  /**
   * Second factors (TOTP, recovery codes, passkeys): a password login of an account that has one
   * waits for it (see `Latchkey.completeLogin`). Off when absent.
   */
  secondFactor?: SecondFactorOptions;
  /** Where pages that need a second factor send the browser. Default `"/login/second-factor"`. */
  secondFactorPath?: string;
}

export interface SecondFactorOptions {
  /** Where factors live; needs the "second factors" capability. */
  store: SecondFactorStore;
  /**
   * Seals TOTP secrets at rest and pending logins in the browser (AES-256-GCM): at least 32
   * characters (or bytes) each, the same on every process. The first key seals and every key
   * opens: rotate by putting a new key first and keeping the old one after it.
   */
  secretKey: string | Buffer | readonly (string | Buffer)[];
  /** The name authenticator apps show. Default: `siteName`, else `"latchkey"`. */
  issuer?: string;
  /** Code attempts are counted here; default `throttle.store`, else `store` ("throttle" capability). */
  throttle?: ThrottleStore;
  /**
   * Passkeys (WebAuthn), as a second factor and for passwordless logins. Off when absent.
   * Challenges are used once through `throttle`, so every process must share it.
   */
  passkeys?: PasskeyOptions;
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
      readonly reason: DenialReason;
      readonly denial: Denial;
      /** Clears a cookie that named no valid session. */
      readonly setCookie: readonly string[];
    };
