import pino from 'pino';
import type { SessionEvent } from './core/events.js';

/**
 * An `onEvent` listener that writes every session and login event as one JSON line (pino).
 * Lines carry public session ids, user ids, IPs and user agents; never a token, password or hash
 * (events do not hold them).
 */
export function auditLog(
  destination: pino.DestinationStream = pino.destination(1),
): (event: SessionEvent) => void {
  const logger = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return (event) => {
    const level =
      event.type === 'theft_detected' || event.type === 'login_throttled' ? 'warn' : 'info';
    logger[level](fieldsOf(event), event.type);
  };
}

function fieldsOf(event: SessionEvent): Record<string, unknown> {
  const { type, ...rest } = event;
  if (!('session' in rest)) return { event: type, ...rest };
  const { session, ...extra } = rest;
  return {
    event: type,
    ...extra,
    sessionId: session.id,
    userId: session.userId,
    ip: session.ip,
    userAgent: session.userAgent,
  };
}
