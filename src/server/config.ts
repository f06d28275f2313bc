import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ConfigError, parseDuration } from '../index.js';
import { normalizeIp } from './app.js';

export interface ServeConfig {
  readonly host: string;
  readonly port: number;
  readonly db: string;
  /** Redis or PostgreSQL URL; SQLite `db` when absent. */
  readonly store: string | undefined;
  readonly cache: boolean;
  /** Milliseconds. */
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  readonly touchInterval: number;
  readonly allowSignup: boolean;
  readonly cookieName: string;
  readonly trustedProxies: ReadonlySet<string>;
  readonly behindHttps: boolean;
  /** PEM files: serve HTTPS directly. Both or neither. */
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly secretFile: string;
  /** Audit log file; null writes it to standard output. */
  readonly auditLog: string | null;
  readonly reauthWindow: number;
}

export const SERVE_USAGE = `Usage: latchkey serve [options]

Runs the login server: HTML pages, a JSON API and health checks, over plain HTTP.

Options (each also read from the environment variable shown):
  --host HOST              address to listen on (LATCHKEY_HOST, default 127.0.0.1)
  --port PORT              port, 0 for any free one (LATCHKEY_PORT, default 3000)
  --db FILE                SQLite file (LATCHKEY_DB, default ./latchkey.db)
  --store URL              redis://… or postgres://… instead of SQLite (LATCHKEY_STORE)
  --cache                  validation cache in front of Redis or PostgreSQL (LATCHKEY_CACHE=1)
  --idle-timeout DUR       inactivity that ends a session (LATCHKEY_IDLE_TIMEOUT, default 30m)
  --absolute-timeout DUR   lifetime of a session (LATCHKEY_ABSOLUTE_TIMEOUT, default 12h)
  --touch-interval DUR     least time between refresh writes (LATCHKEY_TOUCH_INTERVAL, default 1m)
  --allow-signup           let visitors create accounts (LATCHKEY_ALLOW_SIGNUP=1)
  --cookie-name NAME       session cookie name (LATCHKEY_COOKIE_NAME, default __Host-session)
  --trust-proxy IPS        comma-separated proxy addresses whose X-Forwarded-For is believed
                           (LATCHKEY_TRUST_PROXY)
  --behind-https           a proxy in front terminates HTTPS; required to listen on an address
                           other than localhost, 127.0.0.1 or ::1 (LATCHKEY_BEHIND_HTTPS=1)
  --tls-cert FILE          serve HTTPS with this PEM certificate (LATCHKEY_TLS_CERT)
  --tls-key FILE           and this PEM private key (LATCHKEY_TLS_KEY)
  --secret-file FILE       secret that signs CSRF tokens, created 0600 if absent; share it between
                           servers of one site (LATCHKEY_SECRET_FILE, default ./latchkey.secret)
  --audit-log FILE         audit log (JSON lines) file (LATCHKEY_AUDIT_LOG, default standard output)
  --reauth-window DUR      how long after a password login sensitive changes need no password
                           again (LATCHKEY_REAUTH_WINDOW, default 10m)
  -h, --help               show this help

Durations: 500ms, 2s, 30m, 12h, 7d.`;

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  db: { type: 'string' },
  store: { type: 'string' },
  cache: { type: 'boolean' },
  'idle-timeout': { type: 'string' },
  'absolute-timeout': { type: 'string' },
  'touch-interval': { type: 'string' },
  'allow-signup': { type: 'boolean' },
  'cookie-name': { type: 'string' },
  'trust-proxy': { type: 'string' },
  'behind-https': { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'secret-file': { type: 'string' },
  'audit-log': { type: 'string' },
  'reauth-window': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/**
 * Reads `latchkey serve` options from flags, then `LATCHKEY_*` variables, then defaults. Throws
 * {@link ConfigError} with a one-line reason for anything unusable; gives null for `--help`.
 */
export function readServeConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): ServeConfig | null {
  const { values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true });
  if (values.help) return null;
  const pick = (flag: Exclude<keyof typeof OPTIONS, 'help'>): string | undefined => {
    const value = values[flag];
    if (typeof value === 'string') return value;
    if (value === true) return 'true';
    return env[`LATCHKEY_${flag.toUpperCase().replaceAll('-', '_')}`];
  };

  const host = pick('host') ?? '127.0.0.1';
  if (host.trim() === '') throw new ConfigError('--host: must not be empty');
  const behindHttps = readBoolean(pick('behind-https'), '--behind-https');
  const cert = pick('tls-cert') || undefined;
  const key = pick('tls-key') || undefined;
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key: give both or neither');
  }
  const tls = cert && key ? { cert, key } : null;
  if (!behindHttps && !tls && !isLoopback(host)) {
    throw new ConfigError(
      `--host ${host}: browsers drop Secure cookies on plain http except on localhost, so logins would not stick; serve HTTPS through a proxy and pass --behind-https, or use 127.0.0.1`,
    );
  }
  return {
    host,
    port: readPort(pick('port') ?? '3000'),
    db: pick('db') ?? './latchkey.db',
    store: pick('store') || undefined,
    cache: readBoolean(pick('cache'), '--cache'),
    idleTimeout: parseDuration(pick('idle-timeout') ?? '30m', '--idle-timeout'),
    absoluteTimeout: parseDuration(pick('absolute-timeout') ?? '12h', '--absolute-timeout'),
    touchInterval: parseDuration(pick('touch-interval') ?? '1m', '--touch-interval'),
    allowSignup: readBoolean(pick('allow-signup'), '--allow-signup'),
    cookieName: pick('cookie-name') ?? '__Host-session',
    trustedProxies: readProxies(pick('trust-proxy')),
    behindHttps,
    tls,
    secretFile: pick('secret-file') || './latchkey.secret',
    auditLog: pick('audit-log') || null,
    reauthWindow: parseDuration(pick('reauth-window') ?? '10m', '--reauth-window'),
  };
}

export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

function readPort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new ConfigError(`--port: "${value}" is not a port number (0 to 65535)`);
  }
  return port;
}

function readBoolean(value: string | undefined, label: string): boolean {
  if (value === undefined || value === '') return false;
  const normal = value.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(normal)) return true;
  if (['0', 'false', 'no', 'off'].includes(normal)) return false;
  throw new ConfigError(`${label}: "${value}" is not true or false`);
}

function readProxies(value: string | undefined): ReadonlySet<string> {
  const proxies = new Set<string>();
  for (const entry of (value ?? '').split(',')) {
    if (entry.trim() === '') continue;
    const address = normalizeIp(entry);
    if (address === null) {
      throw new ConfigError(`--trust-proxy: "${entry.trim()}" is not an IP address`);
    }
    proxies.add(address);
  }
  return proxies;
}
