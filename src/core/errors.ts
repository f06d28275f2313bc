/** Base class of every error latchkey throws on purpose. */
export class LatchkeyError extends Error {
  override name = 'LatchkeyError';
}

/** Options given to a constructor are wrong; the message says which and why. */
export class ConfigError extends LatchkeyError {
  override name = 'ConfigError';
}

/**
 * An argument given to a method is unusable (an empty user id, a snapshot that is not plain JSON
 * or is over its bound); the message names the argument. Nothing was written.
 */
export class InvalidInputError extends LatchkeyError {
  override name = 'InvalidInputError';
}

/** A `setData` patch would grow the session's `data` past its bound; nothing was written. */
export class DataTooLargeError extends InvalidInputError {
  override name = 'DataTooLargeError';
  constructor(readonly maxBytes: number) {
    super(`data: the merged data would exceed ${maxBytes} bytes; nothing was changed`);
  }
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

/** `error` as a {@link StoreUnavailableError} (kept as is when it already is one). */
export function unavailable(error: unknown): StoreUnavailableError {
  return error instanceof StoreUnavailableError ? error : new StoreUnavailableError(error);
}

/** Runs a store operation; any failure becomes {@link StoreUnavailableError} (fail closed). */
export async function callStore<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw unavailable(error);
  }
}

/**
 * Too much password work is already queued (hashing, strength estimates): refused at once rather
 * than queued without bound. Answer 503 with `Retry-After: retryAfterSeconds`.
 */
export class OverloadedError extends LatchkeyError {
  override name = 'OverloadedError';
  constructor(readonly retryAfterSeconds: number) {
    super('too much password work is queued; retry shortly');
  }
}
