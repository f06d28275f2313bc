/** Base class of every error latchkey throws on purpose. */
export class LatchkeyError extends Error {
  override name = 'LatchkeyError';
}

/** Options given to a constructor are wrong; the message says which and why. */
export class ConfigError extends LatchkeyError {
  override name = 'ConfigError';
}

/**
 * The store could not answer (connection refused, timeout, disk error).
 * Never means "no session": callers must fail closed (HTTP 503), not log the user out.
 */
export class StoreUnavailableError extends LatchkeyError {
  override name = 'StoreUnavailableError';
  constructor(cause: unknown) {
    super(`session store unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** `maxSessionsPerUser` is reached and the policy is `reject`. */
export class SessionLimitError extends LatchkeyError {
  override name = 'SessionLimitError';
  constructor(
    readonly userId: string,
    readonly limit: number,
  ) {
    super(`user already has ${limit} active sessions`);
  }
}
