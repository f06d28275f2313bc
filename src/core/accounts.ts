import { randomUUID } from 'node:crypto';
import type { UserStore } from './capabilities.js';
import {
  CredentialError,
  hashNewPassword,
  hashPassword,
  legacyUsernameKey,
  needsRehash,
  normalizeUsername,
  usernameKey,
  usernameProblem,
  verifyDummyPassword,
  verifyPassword,
} from './credentials.js';
import { callStore } from './errors.js';
import type { CredentialCheck, PasswordCheck, SessionAccount } from './password-check.js';
import type { SignOut } from './sign-out.js';
import type { JsonObject, SessionRecord, UserRecord } from './store.js';

/** An account as shown to people and tools: never the password hash. */
export interface UserInfo {
  readonly id: string;
  readonly username: string;
  readonly createdAt: number;
  readonly disabled: boolean;
}

/**
 * Latchkey's own accounts, over a {@link UserStore}: sign-up, lookup, passwords and disabling.
 * A change that must end the user's sessions checks the session store can, before it writes.
 */
export class Accounts implements PasswordCheck {
  constructor(
    private readonly users: UserStore,
    private readonly signOut: SignOut,
    private readonly now: () => number,
    /** The site's name: a word a password must not lean on (with the username). */
    private readonly siteName: string | null = null,
  ) {}

  /**
   * Adds an account to the user store. Throws {@link CredentialError} for an unusable username or
   * password or a taken username (compared after width mapping, NFC and case folding), and
   * {@link OverloadedError} when too many new passwords are already in line (to be estimated or
   * hashed). A taken name is found only after hashing, so the answer's timing does not tell
   * taken from free.
   */
  async createUser(username: unknown, password: unknown): Promise<UserInfo> {
    const name = normalizeUsername(username);
    if (name === null || usernameProblem(name) !== null) {
      throw new CredentialError(
        'invalid_username',
        'Username must be 1 to 64 letters, digits or ASCII symbols, in words separated by single spaces.',
      );
    }
    const key = usernameKey(name);
    const record: UserRecord = {
      id: randomUUID(),
      username: name,
      usernameKey: key,
      passwordHash: await hashNewPassword(password, this.wordsOf(name)),
      createdAt: this.now(),
      disabled: false,
    };
    // The store refuses a taken key atomically; there is no cheaper look-up first.
    if (!(await callStore(() => this.users.createUser(record)))) {
      throw new CredentialError('username_taken', 'That username is taken.');
    }
    return infoOf(record);
  }

  /** The account named `username` (compared after width mapping, NFC and case folding), or null. */
  async findUser(username: string): Promise<UserInfo | null> {
    const record = await this.findByName(username);
    return record && infoOf(record);
  }

  /** Every account, oldest first. */
  async listUsers(): Promise<UserInfo[]> {
    return (await callStore(() => this.users.listUsers())).map(infoOf);
  }

  /**
   * Sets a new password, forgets every remember-me token of the user and, unless
   * `signOutOthers` is false, ends every session except `keepSession`. False when there is no
   * such user. Throws {@link CredentialError}.
   */
  async changePassword(
    userId: string,
    password: unknown,
    options: { keepSession?: string; signOutOthers?: boolean } = {},
  ): Promise<boolean> {
    const signOutOthers = options.signOutOthers !== false;
    if (signOutOthers) this.signOut.requireIndex('changePassword');
    const user = await callStore(() => this.users.findUserById(userId));
    if (!user) return false;
    const passwordHash = await hashNewPassword(password, this.wordsOf(user.username));
    if (!(await callStore(() => this.users.updateUser(userId, { passwordHash })))) return false;
    // Tokens before sessions: a remember-me restore re-checks its token after writing its session.
    await this.signOut.forgetRemembered(userId);
    if (signOutOthers) await this.signOut.others(userId, options.keepSession);
    return true;
  }

  /** Blocks logins and ends all the user's sessions. False when there is no such user. */
  async disableUser(userId: string): Promise<boolean> {
    this.signOut.requireIndex('disableUser');
    if (!(await callStore(() => this.users.updateUser(userId, { disabled: true })))) return false;
    await this.signOut.everywhere(userId, 'disableUser');
    return true;
  }

  /** Allows logins again. False when there is no such user. */
  enableUser(userId: string): Promise<boolean> {
    return callStore(() => this.users.updateUser(userId, { disabled: false }));
  }

  /** Deletes the account and ends all its sessions. False when there is no such user. */
  async deleteUser(userId: string): Promise<boolean> {
    this.signOut.requireIndex('deleteUser');
    if (!(await callStore(() => this.users.deleteUser(userId)))) return false;
    await this.signOut.everywhere(userId, 'deleteUser');
    return true;
  }

  /** What a password of `username` must not lean on. */
  private wordsOf(username: string): string[] {
    return this.siteName === null ? [username] : [username, this.siteName];
  }

  async check(username: string, password: string): Promise<CredentialCheck> {
    const record = await this.findByName(username);
    if (!record) {
      await verifyDummyPassword(password);
      return { userId: null, user: null };
    }
    const matches = await verifyPassword(record.passwordHash, password);
    if (!matches || record.disabled) return { userId: record.id, user: null };
    // Hashed now, written only once the account is known unchanged: never over a new password.
    const upgraded = needsRehash(record.passwordHash) ? await hashPassword(password) : null;
    return {
      userId: record.id,
      user: snapshotOf(record),
      unchanged: async () => {
        if (!(await this.unchanged(record))) return false;
        if (upgraded !== null) {
          await callStore(() => this.users.updateUser(record.id, { passwordHash: upgraded }));
        }
        return true;
      },
    };
  }

  /** The account a typed name names: by its key, or by its key from before width mapping. */
  private async findByName(username: string): Promise<UserRecord | null> {
    const name = normalizeUsername(username);
    if (name === null) return null;
    const record = await callStore(() => this.users.findUserByKey(usernameKey(name)));
    const legacy = record ? null : legacyUsernameKey(username);
    return legacy === null ? record : callStore(() => this.users.findUserByKey(legacy));
  }

  async accountOf(session: SessionRecord): Promise<SessionAccount | null> {
    const record = await callStore(() => this.users.findUserById(session.userId));
    if (!record || record.disabled) return null;
    return {
      key: record.usernameKey,
      verify: (password) => verifyPassword(record.passwordHash, password),
      unchanged: () => this.unchanged(record),
    };
  }

  async rememberedUser(userId: string): Promise<JsonObject | null> {
    const record = await callStore(() => this.users.findUserById(userId));
    return record && !record.disabled ? snapshotOf(record) : null;
  }

  /**
   * Whether the account `seen` was read as is still enabled with the same hash. Looked up by
   * username key: a script in Redis, so never served from its client-side cache.
   */
  private async unchanged(seen: UserRecord): Promise<boolean> {
    const now = await callStore(() => this.users.findUserByKey(seen.usernameKey));
    return (
      now !== null && now.id === seen.id && !now.disabled && now.passwordHash === seen.passwordHash
    );
  }
}

/** The user snapshot kept in a session, so a request needs no user lookup. */
export function snapshotOf(user: { id: string; username: string }): JsonObject {
  return { id: user.id, username: user.username };
}

function infoOf(record: UserRecord): UserInfo {
  const { id, username, createdAt, disabled } = record;
  return { id, username, createdAt, disabled };
}
