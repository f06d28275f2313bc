import type { FactorKind, SessionRecord } from './store.js';
import type { AttemptClient } from './throttle.js';

/** Everything the engine reports; records never contain a token, so events are safe to log. */
export type SessionEvent =
  | { readonly type: 'created'; readonly session: SessionRecord }
  | { readonly type: 'refreshed'; readonly session: SessionRecord }
  | { readonly type: 'expired'; readonly session: SessionRecord }
  | { readonly type: 'logout'; readonly session: SessionRecord }
  | { readonly type: 'rotated'; readonly session: SessionRecord; readonly previousId: string }
  | { readonly type: 'evicted'; readonly sessionId: string; readonly userId: string }
  | {
      readonly type: 'revoked';
      readonly userId: string;
      /** The one session revoked, or null when all of a user's sessions were. */
      readonly sessionId: string | null;
      readonly count: number;
    }
  | {
      readonly type: 'login_succeeded';
      readonly session: SessionRecord;
      /** `second_factor`: a password and then a second factor; `passkey`: a passkey alone. */
      readonly via: 'password' | 'remember' | 'second_factor' | 'passkey';
    }
  /** A session proved a second factor: it was rotated to assurance level 2. */
  | { readonly type: 'stepped_up'; readonly session: SessionRecord }
  | {
      readonly type: 'second_factor_added';
      readonly userId: string;
      readonly kind: FactorKind;
      readonly factorId: string;
    }
  | {
      readonly type: 'second_factor_removed';
      readonly userId: string;
      /** The one factor removed, or null for all of the account's (an admin reset). */
      readonly factorId: string | null;
      readonly by: 'user' | 'admin';
    }
  /** A second factor (code or passkey) was wrong, replayed or refused. */
  | { readonly type: 'second_factor_failed'; readonly userId: string; readonly ip: string | null }
  | { readonly type: 'recovery_code_used'; readonly userId: string; readonly remaining: number }
  | {
      readonly type: 'login_failed';
      /** The account tried, when it exists (an unknown name is not logged: it may be a password). */
      readonly userId: string | null;
      readonly ip: string | null;
      /** How the attempt was counted; `unknown_ip`: no client address, so no per-IP limit. */
      readonly client: AttemptClient;
    }
  | {
      readonly type: 'login_throttled';
      readonly userId: string | null;
      readonly ip: string | null;
      readonly client: AttemptClient;
      readonly retryAfterSeconds: number;
    }
  /** A rotated remember-me token was replayed: every session and token of the user was revoked. */
  | { readonly type: 'theft_detected'; readonly userId: string };

export type EventListener = (event: SessionEvent) => void;

/** `listener` made safe to call from a request: a listener that throws never breaks one. */
export function eventSink(listener: EventListener | undefined): EventListener {
  if (!listener) return ignore;
  return (event) => {
    try {
      listener(event);
    } catch (error) {
      process.emitWarning(`latchkey onEvent listener threw: ${String(error)}`);
    }
  };
}

function ignore(): void {}
