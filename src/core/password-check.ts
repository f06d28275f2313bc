import { usernameKey } from './credentials.js';
import { ConfigError, callStore } from './errors.js';
import type { JsonObject, SessionRecord } from './store.js';

/**
 * Checks a password against an app's own user table. Gives the user id (and optionally the
 * snapshot to keep in the session), or null for any failure: latchkey reports all of them alike.
 */
export type VerifyCredentials = (
  username: string,
  password: string,
) => Promise<{ userId: string; user?: JsonObject } | null>;

/**
 * Whether an account is still the one a check read: reads it again (from the store, never a
 * cache) and gives false when it was disabled or deleted, or its password changed, since. Called
 * after the session is written, so a concurrent change either is seen here or ends that session.
 */
export type Unchanged = () => Promise<boolean>;

/**
 * The account behind a correct password (`user` set, with its `unchanged` re-check), or a failure
 * naming the account tried when it exists.
 */
export type CredentialCheck =
  | { readonly userId: string; readonly user: JsonObject; readonly unchanged: Unchanged }
  | { readonly userId: string | null; readonly user: null };

/** The account behind a session: its throttle key and how to check its password. */
export interface SessionAccount {
  readonly key: string;
  verify(password: string): Promise<boolean>;
  /** After a successful `verify`: see {@link Unchanged}. */
  readonly unchanged: Unchanged;
}

/**
 * For apps with their own user table: whether `userId` may still be signed in (not deleted or
 * disabled). Checked when a remember-me token is used and after every login; a rejection is an
 * outage (fail closed, 503).
 */
export type IsActive = (userId: string) => Promise<boolean>;

/**
 * Telling who someone is by password: latchkey's own accounts (`Accounts`) or the app's
 * `verifyCredentials`. Store failures are `StoreUnavailableError`; every mismatch is a plain answer.
 */
export interface PasswordCheck {
  /** A login's username and password; an unknown user costs as long as a wrong password. */
  check(username: string, password: string): Promise<CredentialCheck>;
  /** For re-authentication: the account behind `session`, or null when it is gone or disabled. */
  accountOf(session: SessionRecord): Promise<SessionAccount | null>;
  /** For remember-me: the snapshot of `userId`, or null when the account is gone or disabled. */
  rememberedUser(userId: string): Promise<JsonObject | null>;
}

/**
 * Passwords checked by the app's own user table; `isActive` (optional) tells latchkey when an app
 * user is gone or disabled. Without it a remembered user stays signed in until the app calls
 * `logoutEverywhere`.
 */
export function appCredentials(
  verifyCredentials: VerifyCredentials,
  isActive: IsActive | null,
): PasswordCheck {
  const active = (userId: string): Promise<boolean> =>
    isActive ? callStore(() => isActive(userId)) : Promise.resolve(true);
  return {
    async check(username, password) {
      const found = await verifyCredentials(username, password);
      if (!found) return { userId: null, user: null };
      const { userId } = found;
      return {
        userId,
        user: found.user ?? { id: userId, username },
        unchanged: () => active(userId),
      };
    },
    async accountOf(session) {
      const username = session.user.username;
      if (typeof username !== 'string') return null;
      return {
        key: usernameKey(username),
        verify: async (password) =>
          (await verifyCredentials(username, password))?.userId === session.userId,
        unchanged: () => active(session.userId),
      };
    },
    async rememberedUser(userId) {
      return (await active(userId)) ? { id: userId } : null;
    },
  };
}

/** Neither `users` nor `verifyCredentials`: sessions work, password checks are a ConfigError. */
export const NO_PASSWORDS: PasswordCheck = {
  check: usersRequired,
  accountOf: usersRequired,
  async rememberedUser(userId) {
    return { id: userId };
  },
};

async function usersRequired(): Promise<never> {
  throw noUsers();
}

/** What account methods throw when latchkey keeps no accounts. */
export function noUsers(): ConfigError {
  return new ConfigError('users: this needs a UserStore (new Latchkey({ users, ... }))');
}

/**
 * Whether `unchanged` holds; when it does not, or cannot tell (an outage), `undo` first takes
 * back what the flow wrote, so no session is left that its own check refused.
 */
export async function confirmed(
  unchanged: () => Promise<boolean>,
  undo: () => Promise<unknown>,
): Promise<boolean> {
  let holds = false;
  try {
    holds = await unchanged();
  } finally {
    if (!holds) await undo();
  }
  return holds;
}
