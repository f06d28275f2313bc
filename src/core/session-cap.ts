import { requireCapability, type SessionIndex } from './capabilities.js';
import { ConfigError, callStore, SessionLimitError } from './errors.js';
import type { EventListener } from './events.js';
import type { SessionRecord, SessionStore } from './store.js';

/** What creating one more session does at `maxSessionsPerUser`. */
export type SessionLimitPolicy = 'evict-oldest' | 'reject';

/** `maxSessionsPerUser` as the engine applies it, over the store's "session index". */
export interface SessionCap {
  readonly index: SessionIndex;
  readonly max: number;
  readonly policy: SessionLimitPolicy;
}

/**
 * Evict-and-retry rounds of one capped create. Past the first, each round lost means another
 * create for the user succeeded meanwhile: a burst of n parallel creates needs at most n + 1.
 */
const MAX_ROUNDS = 128;

/** The cap the options ask for, or null; a {@link ConfigError} for bad values or a store without an index. */
export function sessionCapOf(
  store: SessionStore,
  max: number | undefined,
  policy: SessionLimitPolicy = 'evict-oldest',
): SessionCap | null {
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw new ConfigError(`maxSessionsPerUser: must be a whole number >= 1, got ${String(max)}`);
  }
  if (policy !== 'evict-oldest' && policy !== 'reject') {
    throw new ConfigError(
      `onSessionLimit: must be "evict-oldest" or "reject", got ${String(policy)}`,
    );
  }
  if (max === undefined) return null;
  return { index: requireCapability(store, 'session index', 'maxSessionsPerUser'), max, policy };
}

/**
 * Inserts `session` under the cap, atomically in the store. At the cap, `reject` throws
 * {@link SessionLimitError}; `evict-oldest` deletes the user's oldest sessions until its own
 * deletes made room (a delete another create won makes room for that one), then retries.
 */
export async function createCapped(
  store: SessionStore,
  cap: SessionCap,
  session: SessionRecord,
  emit: EventListener,
): Promise<void> {
  const { index, max } = cap;
  const { userId, createdAt } = session;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (await callStore(() => index.createCapped(session, max))) return;
    if (cap.policy === 'reject') break;
    const live = await callStore(() => index.listByUser(userId, createdAt));
    let needed = live.length - max + 1;
    for (const oldest of live) {
      if (needed <= 0) break;
      if (await callStore(() => store.delete(oldest.id))) {
        emit({ type: 'evicted', sessionId: oldest.id, userId });
        needed--;
      }
    }
  }
  throw new SessionLimitError(userId, max);
}
