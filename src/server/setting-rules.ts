// The checks across settings (each setting's own value is checked by its kind), and what the
// passkey settings amount to.

import { HOST_PREFIX } from '../index.js';
import { isLoopback } from './request.js';
import { workersOf } from './setting-kinds.js';
import type { Settings } from './settings.js';
import { isMemory, NOT_DURABLE, refusedForUsers, takesCache } from './stores.js';

/** Checks across settings, in order; a message names each key as `{key}`. */
export const RULES: readonly {
  readonly broken: (s: Settings) => boolean;
  readonly message: string;
}[] = [
  {
    broken: (s) => s.idleTimeout > s.absoluteTimeout,
    message: '{idleTimeout} must not exceed {absoluteTimeout}',
  },
  { broken: (s) => s.rememberGrace > 60_000, message: '{rememberGrace} must be at most 1m' },
  {
    broken: (s) => (s.tlsCert === null) !== (s.tlsKey === null),
    message: '{tlsCert} and {tlsKey}: give both or neither',
  },
  {
    broken: (s) => !s.behindHttps && s.tlsCert === null && !isLoopback(s.host),
    message:
      '{host}: browsers drop Secure cookies on plain http except on localhost, so logins would not stick; serve HTTPS through a proxy and pass --behind-https, or use 127.0.0.1',
  },
  {
    broken: (s) => s.metricsPort !== null && s.metricsPort !== 0 && s.metricsPort === s.port,
    message: '{metricsPort} must differ from {port} (use --metrics to serve both on one port)',
  },
  {
    broken: (s) => s.cacheMaxStaleness === 0,
    message: '{cacheMaxStaleness}: must be at least 20 ms',
  },
  {
    broken: (s) => s.metrics && s.metricsToken === null && !isLoopback(s.host),
    message:
      '{metrics}: /metrics on {host} would show anyone who can reach the site its traffic; pass --metrics-token, use --metrics-port, or listen on loopback',
  },
  {
    broken: (s) => s.cache && !takesCache(s.store),
    message: '{cache}: needs --store redis://… or postgres://…',
  },
  { broken: (s) => refusedForUsers(s.users), message: `{users} ${NOT_DURABLE}` },
  {
    broken: (s) => {
      const passkeys = passkeySettings(s);
      return passkeys !== null && !passkeys.origins.every((o) => onRpId(o, passkeys.rpId));
    },
    message: '{origin}: each origin must be on {rpId} or a subdomain of it',
  },
  {
    broken: (s) =>
      passkeySettings(s)?.origins.some(
        (o) => !o.startsWith('https://') && new URL(o).hostname !== 'localhost',
      ) ?? false,
    message: '{origin}: browsers allow passkeys over https only (or http://localhost)',
  },
  {
    broken: (s) => workersOf(s.workers) > 1 && (isMemory(s.store) || isMemory(s.users)),
    message:
      '{workers}: a memory store lives inside one process, so each worker would keep its own sessions and users; use one worker, or SQLite, PostgreSQL or Redis',
  },
  {
    broken: (s) => !s.cookieName.startsWith(HOST_PREFIX) && !s.insecureCookieName,
    message: `{cookieName}: without the ${HOST_PREFIX} prefix a sibling subdomain can set or shadow the session cookie; use a ${HOST_PREFIX} name, or pass --insecure-cookie-name`,
  },
];

/**
 * The passkey settings, or null when neither `--rp-id` nor `--origin` is set (passkeys off: the
 * RP id is never taken from a request's Host, which the client chooses). One gives the other: an
 * RP id alone allows `https://RP-ID`, origins alone use the first one's host as the RP id.
 */
export function passkeySettings(
  s: Pick<Settings, 'rpId' | 'origin'>,
): { rpId: string; origins: readonly string[] } | null {
  if (s.rpId === null && s.origin.length === 0) return null;
  const first = s.origin[0];
  const rpId = s.rpId ?? new URL(first as string).hostname;
  return { rpId, origins: s.origin.length > 0 ? s.origin : [`https://${rpId}`] };
}

function onRpId(origin: string, rpId: string): boolean {
  const host = new URL(origin).hostname;
  return host === rpId || host.endsWith(`.${rpId}`);
}
