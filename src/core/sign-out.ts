import { hasCapability, requireCapability } from './capabilities.js';
import { callStore } from './errors.js';
import type { RememberTokens } from './remember.js';
import type { Sessions } from './sessions.js';
import type { SessionStore } from './store.js';

/**
 * Ending what keeps a user signed in, sessions and remember-me tokens together: for "log out
 * everywhere", password changes, disabled and deleted accounts, and remember-me theft. Tokens go
 * first, sessions second: a remember-me restore writes its session, then checks its token is still
 * there, so a restore racing a sign-out either sees the token gone or has its session ended here.
 */
export class SignOut {
  private readonly indexed: boolean;

  constructor(
    private readonly store: SessionStore,
    private readonly sessions: Sessions,
    private readonly remember: RememberTokens | null,
  ) {
    this.indexed = hasCapability(store, 'session index');
  }

  /** Throws the {@link ConfigError} naming `needer` when the session store has no "session index". */
  requireIndex(needer: string): void {
    if (!this.indexed) requireCapability(this.store, 'session index', needer);
  }

  /** Ends every session and remember-me token of the user. */
  async everywhere(userId: string, needer = 'logoutEverywhere'): Promise<void> {
    this.requireIndex(needer);
    await this.forgetRemembered(userId);
    await this.sessions.revokeAllForUser(userId);
  }

  /** Ends every session of the user except `keepSession` (the one that asked, if any). */
  async others(userId: string, keepSession?: string): Promise<void> {
    await this.sessions.revokeAllForUser(userId, { except: keepSession });
  }

  /**
   * After a replayed remember-me token: everything of the user ends. A session store without an
   * index cannot list the user's sessions; they then end at their idle timeout.
   */
  async afterTheft(userId: string): Promise<void> {
    await this.forgetRemembered(userId);
    if (this.indexed) await this.sessions.revokeAllForUser(userId);
  }

  async forgetRemembered(userId: string): Promise<void> {
    const remember = this.remember;
    if (remember) await callStore(() => remember.forgetAll(userId));
  }
}
