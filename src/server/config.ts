import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError, HostCookie, parseDuration } from '../index.js';
import { normalizeIp } from './app.js';
import { redact } from './store.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

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
  /** The server log's least level (pino). */
  readonly logLevel: LogLevel;
  /** `GET /metrics` on the main port. */
  readonly metrics: boolean;
  /** A separate listener (same host) that serves only `GET /metrics`; null for none. */
  readonly metricsPort: number | null;
  /** Milliseconds between sweeps of expired rows (jittered ±20%); 0 turns sweeping off. */
  readonly sweepInterval: number;
  /**
   * Hosts (`host` or `host:port`, lowercase) that the login page may send a browser back to by
   * absolute URL (`next` / `rd`), for forward-auth set-ups.
   */
  readonly forwardAuthHosts: readonly string[];
  /** The `--config` file read, or null. */
  readonly configFile: string | null;
}

export const SERVE_USAGE = `Usage: latchkey serve [options]

Runs the login server: HTML pages, a JSON API and health checks, over plain HTTP.

Options (each also read from the environment variable shown, then from the --config file):
  --config FILE            JSON file of settings, keys as below in camelCase (idleTimeout, …);
                           flags beat LATCHKEY_* variables, which beat the file (LATCHKEY_CONFIG)
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
  --trust-proxy IPS        comma-separated proxy addresses whose X-Forwarded-For and X-Request-Id
                           are believed (LATCHKEY_TRUST_PROXY)
  --behind-https           a proxy in front terminates HTTPS; required to listen on an address
                           other than localhost, 127.0.0.1 or ::1 (LATCHKEY_BEHIND_HTTPS=1)
  --tls-cert FILE          serve HTTPS with this PEM certificate (LATCHKEY_TLS_CERT)
  --tls-key FILE           and this PEM private key (LATCHKEY_TLS_KEY)
  --secret-file FILE       secret that signs CSRF tokens, created 0600 if absent; share it between
                           servers of one site (LATCHKEY_SECRET_FILE, default ./latchkey.secret)
  --audit-log FILE         audit log (JSON lines) file (LATCHKEY_AUDIT_LOG, default standard output)
  --reauth-window DUR      how long after a password login sensitive changes need no password
                           again (LATCHKEY_REAUTH_WINDOW, default 10m)
  --log-level LEVEL        fatal, error, warn, info, debug, trace or silent (LATCHKEY_LOG_LEVEL,
                           default info)
  --metrics                serve Prometheus metrics at GET /metrics (LATCHKEY_METRICS=1)
  --metrics-port PORT      serve GET /metrics on this port instead, same host (LATCHKEY_METRICS_PORT)
  --sweep-interval DUR     delete expired sessions, remember-me tokens and login-attempt windows
                           this often, ±20%; 0 turns it off (LATCHKEY_SWEEP_INTERVAL, default 5m)
  --forward-auth-hosts H   comma-separated hosts the login page may return to by absolute URL
                           (?next= or ?rd=), for nginx auth_request and the like
                           (LATCHKEY_FORWARD_AUTH_HOSTS)
  -h, --help               show this help

Durations: 500ms, 2s, 30m, 12h, 7d.`;

/** Every setting: its name in the config file; the flag and variable are derived from it. */
const KEYS = [
  'host',
  'port',
  'db',
  'store',
  'cache',
  'idleTimeout',
  'absoluteTimeout',
  'touchInterval',
  'reauthWindow',
  'allowSignup',
  'cookieName',
  'trustProxy',
  'behindHttps',
  'tlsCert',
  'tlsKey',
  'secretFile',
  'auditLog',
  'logLevel',
  'metrics',
  'metricsPort',
  'sweepInterval',
  'forwardAuthHosts',
] as const;

export type ConfigKey = (typeof KEYS)[number];

const BOOLEAN_KEYS = new Set<ConfigKey>(['cache', 'allowSignup', 'behindHttps', 'metrics']);

/** What a key is set to when no source gives it. */
const DEFAULTS: Partial<Record<ConfigKey, string>> = {
  host: '127.0.0.1',
  port: '3000',
  db: './latchkey.db',
  idleTimeout: '30m',
  absoluteTimeout: '12h',
  touchInterval: '1m',
  reauthWindow: '10m',
  cookieName: '__Host-session',
  secretFile: './latchkey.secret',
  logLevel: 'info',
  sweepInterval: '5m',
};

const LOG_LEVELS: readonly LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

/** `idleTimeout` → `--idle-timeout`. */
export function flagOf(key: ConfigKey): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/** `idleTimeout` → `LATCHKEY_IDLE_TIMEOUT`. */
export function envOf(key: ConfigKey): string {
  return `LATCHKEY_${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

const OPTIONS = {
  config: { type: 'string' },
  ...Object.fromEntries(
    KEYS.map((key) => [
      flagOf(key).slice(2),
      { type: BOOLEAN_KEYS.has(key) ? 'boolean' : 'string' },
    ]),
  ),
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Where a setting came from. */
export type ConfigSource =
  | { readonly kind: 'flag' }
  | { readonly kind: 'env' }
  | { readonly kind: 'file'; readonly file: string }
  | { readonly kind: 'default' };

export interface ResolvedConfig {
  readonly config: ServeConfig;
  /** Where each key's value came from. */
  readonly sources: Readonly<Record<ConfigKey, ConfigSource>>;
}

// ---------------------------------------------------------------------------------------------
// The schema: one for flags, variables and the file (flags and variables are strings, the file
// may also hold numbers, booleans and arrays). Messages say why; the caller adds which key.
// ---------------------------------------------------------------------------------------------

type Check<T> = { ok: true; value: T } | { ok: false; reason: string };

function field<T>(check: (value: unknown) => Check<T>) {
  return z.unknown().transform((value, ctx): T => {
    const result = check(value);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.reason });
    return z.NEVER;
  });
}

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function text(options: { empty: 'refuse' | 'absent' } = { empty: 'absent' }) {
  return (value: unknown): Check<string | undefined> => {
    if (value === undefined) return { ok: true, value: undefined };
    if (typeof value !== 'string')
      return { ok: false, reason: `expected a string, got ${shown(value)}` };
    if (value.trim() === '') {
      return options.empty === 'refuse'
        ? { ok: false, reason: 'must not be empty' }
        : { ok: true, value: undefined };
    }
    return { ok: true, value };
  };
}

function port(value: unknown): Check<number | undefined> {
  if (value === undefined || value === '') return { ok: true, value: undefined };
  const string = String(value);
  const number = Number(string);
  if (
    (typeof value !== 'string' && typeof value !== 'number') ||
    !/^\d+$/.test(string) ||
    number > 65535
  ) {
    return { ok: false, reason: `${shown(value)} is not a port number (0 to 65535)` };
  }
  return { ok: true, value: number };
}

function boolean(value: unknown): Check<boolean> {
  if (value === undefined || value === '') return { ok: true, value: false };
  if (typeof value === 'boolean') return { ok: true, value };
  const normal = typeof value === 'string' ? value.toLowerCase() : null;
  if (normal !== null && ['1', 'true', 'yes', 'on'].includes(normal))
    return { ok: true, value: true };
  if (normal !== null && ['0', 'false', 'no', 'off'].includes(normal)) {
    return { ok: true, value: false };
  }
  return { ok: false, reason: `${shown(value)} is not true or false` };
}

function duration(least = 0) {
  return (value: unknown): Check<number> => {
    try {
      // A bare number (flags and variables are strings) is milliseconds, as in the library.
      const ms = parseDuration(
        typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value,
        '',
      );
      if (ms !== 0 && ms < least) {
        return { ok: false, reason: `${shown(value)} is too short (0 or at least ${least} ms)` };
      }
      return { ok: true, value: ms };
    } catch (error) {
      return { ok: false, reason: (error as Error).message.replace(/^: /, '') };
    }
  };
}

/** A comma-separated string, or (in the file) an array of strings. */
function list(value: unknown): Check<string[]> {
  if (value === undefined) return { ok: true, value: [] };
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items) || !items.every((item) => typeof item === 'string')) {
    return { ok: false, reason: `expected a comma-separated string or an array of strings` };
  }
  return { ok: true, value: items.map((item) => item.trim()).filter((item) => item !== '') };
}

function proxies(value: unknown): Check<ReadonlySet<string>> {
  const entries = list(value);
  if (!entries.ok) return entries;
  const set = new Set<string>();
  for (const entry of entries.value) {
    const address = normalizeIp(entry);
    if (address === null) return { ok: false, reason: `"${entry}" is not an IP address` };
    set.add(address);
  }
  return { ok: true, value: set };
}

function hosts(value: unknown): Check<string[]> {
  const entries = list(value);
  if (!entries.ok) return entries;
  const out: string[] = [];
  for (const entry of entries.value) {
    const host = entry.toLowerCase();
    if (!/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?$/.test(host)) {
      return { ok: false, reason: `"${entry}" is not a host name or host:port` };
    }
    out.push(host);
  }
  return { ok: true, value: out };
}

function storeUrl(value: unknown): Check<string | undefined> {
  const checked = text()(value);
  if (!checked.ok || checked.value === undefined) return checked;
  if (!/^(redis|rediss|postgres|postgresql):\/\//i.test(checked.value)) {
    return {
      ok: false,
      reason: `"${redact(checked.value)}" is not a redis://, rediss://, postgres:// or postgresql:// URL`,
    };
  }
  return checked;
}

function cookieName(value: unknown): Check<string> {
  const checked = text({ empty: 'refuse' })(value);
  if (!checked.ok) return checked;
  const name = checked.value ?? '__Host-session';
  try {
    new HostCookie(name);
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  return { ok: true, value: name };
}

function logLevel(value: unknown): Check<LogLevel> {
  const level = typeof value === 'string' ? value.toLowerCase() : value;
  if (LOG_LEVELS.includes(level as LogLevel)) return { ok: true, value: level as LogLevel };
  return { ok: false, reason: `${shown(value)} is not one of ${LOG_LEVELS.join(', ')}` };
}

/** Cross-key messages name each key as `{key}`; the caller fills in where it was set. */
const SCHEMA = z
  .strictObject({
    host: field(text({ empty: 'refuse' })),
    port: field(port),
    db: field(text()),
    store: field(storeUrl),
    cache: field(boolean),
    idleTimeout: field(duration()),
    absoluteTimeout: field(duration()),
    touchInterval: field(duration()),
    reauthWindow: field(duration()),
    allowSignup: field(boolean),
    cookieName: field(cookieName),
    trustProxy: field(proxies),
    behindHttps: field(boolean),
    tlsCert: field(text()),
    tlsKey: field(text()),
    secretFile: field(text()),
    auditLog: field(text()),
    logLevel: field(logLevel),
    metrics: field(boolean),
    metricsPort: field(port),
    sweepInterval: field(duration(100)),
    forwardAuthHosts: field(hosts),
  })
  .superRefine((c, ctx) => {
    const issue = (key: ConfigKey, message: string) =>
      ctx.addIssue({ code: 'custom', path: [key], message, params: { crossKey: true } });
    if (c.idleTimeout > c.absoluteTimeout) {
      issue('idleTimeout', '{idleTimeout} must not exceed {absoluteTimeout}');
    }
    if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) {
      issue(
        c.tlsCert === undefined ? 'tlsKey' : 'tlsCert',
        '{tlsCert} and {tlsKey}: give both or neither',
      );
    }
    const host = c.host ?? '127.0.0.1';
    if (!c.behindHttps && c.tlsCert === undefined && !isLoopback(host)) {
      issue(
        'host',
        `{host}: browsers drop Secure cookies on plain http except on localhost, so logins would not stick; serve HTTPS through a proxy and pass --behind-https, or use 127.0.0.1`,
      );
    }
    if (c.metricsPort !== undefined && c.metricsPort !== 0 && c.metricsPort === c.port) {
      issue(
        'metricsPort',
        '{metricsPort} must differ from {port} (use --metrics to serve both on one port)',
      );
    }
    if (c.cache && c.store === undefined) {
      issue('cache', '{cache}: needs --store redis://… or postgres://…');
    }
  });

// ---------------------------------------------------------------------------------------------

/**
 * Reads `latchkey serve` options from flags, then `LATCHKEY_*` variables, then the `--config`
 * file, then defaults. Throws {@link ConfigError} with a one-line reason naming the key for
 * anything unusable; gives null for `--help`.
 */
export function readServeConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): ServeConfig | null {
  return resolveServeConfig(argv, env)?.config ?? null;
}

/** {@link readServeConfig}, also telling where each value came from (`latchkey config check`). */
export function resolveServeConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): ResolvedConfig | null {
  const { values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true });
  if (values.help) return null;
  const flags = values as Record<string, string | boolean | undefined>;
  const configFile =
    (typeof values.config === 'string' ? values.config : env.LATCHKEY_CONFIG) || null;
  const file = configFile === null ? {} : readConfigFile(configFile);

  const input: Record<string, unknown> = {};
  const sources = {} as Record<ConfigKey, ConfigSource>;
  for (const key of KEYS) {
    const flag = flags[flagOf(key).slice(2)];
    const fromEnv = env[envOf(key)];
    if (flag !== undefined) {
      input[key] = flag === true ? 'true' : flag;
      sources[key] = { kind: 'flag' };
    } else if (fromEnv !== undefined) {
      input[key] = fromEnv;
      sources[key] = { kind: 'env' };
    } else if (configFile !== null && Object.hasOwn(file, key)) {
      input[key] = file[key];
      sources[key] = { kind: 'file', file: configFile };
    } else {
      input[key] = DEFAULTS[key];
      sources[key] = { kind: 'default' };
    }
  }
  // Unknown keys can only come from the file: the strict schema names them.
  for (const key of Object.keys(file)) {
    if (!(KEYS as readonly string[]).includes(key)) input[key] = file[key];
  }

  const parsed = SCHEMA.safeParse(input);
  if (!parsed.success) {
    const [issue] = parsed.error.issues;
    throw new ConfigError(describeIssue(issue, input, sources, configFile));
  }
  const c = parsed.data;
  const config: ServeConfig = {
    host: c.host ?? '127.0.0.1',
    port: c.port ?? 3000,
    db: c.db ?? './latchkey.db',
    store: c.store,
    cache: c.cache,
    idleTimeout: c.idleTimeout,
    absoluteTimeout: c.absoluteTimeout,
    touchInterval: c.touchInterval,
    allowSignup: c.allowSignup,
    cookieName: c.cookieName,
    trustedProxies: c.trustProxy,
    behindHttps: c.behindHttps,
    tls: c.tlsCert && c.tlsKey ? { cert: c.tlsCert, key: c.tlsKey } : null,
    secretFile: c.secretFile ?? './latchkey.secret',
    auditLog: c.auditLog ?? null,
    reauthWindow: c.reauthWindow,
    logLevel: c.logLevel,
    metrics: c.metrics,
    metricsPort: c.metricsPort ?? null,
    sweepInterval: c.sweepInterval,
    forwardAuthHosts: c.forwardAuthHosts,
    configFile,
  };
  return { config, sources };
}

function readConfigFile(path: string): Record<string, unknown> {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`--config ${path}: cannot read it (${(error as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (error) {
    throw new ConfigError(`--config ${path}: not valid JSON (${(error as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`--config ${path}: must hold a JSON object of settings`);
  }
  return value as Record<string, unknown>;
}

/** `--port: …`, `--port: … (from LATCHKEY_PORT)`, `latchkey.json: port: …`. */
function describeIssue(
  issue: z.core.$ZodIssue | undefined,
  input: Record<string, unknown>,
  sources: Record<ConfigKey, ConfigSource>,
  configFile: string | null,
): string {
  if (issue === undefined) return 'invalid configuration';
  if (issue.code === 'unrecognized_keys') {
    const [key = ''] = issue.keys;
    return `${configFile ?? 'config'}: unknown key "${key}"${suggestion(key)}`;
  }
  const key = issue.path[0] as ConfigKey;
  if (issue.code === 'custom' && issue.params?.crossKey === true) {
    return issue.message.replace(/\{(\w+)\}/g, (_, name: ConfigKey) =>
      origin(name, input[name], sources[name]),
    );
  }
  const source = sources[key];
  if (source.kind === 'file') return `${source.file}: ${key}: ${issue.message}`;
  if (source.kind === 'env') return `${flagOf(key)}: ${issue.message} (from ${envOf(key)})`;
  return `${flagOf(key)}: ${issue.message}`;
}

/** `idleTimeout (--idle-timeout 2h)`, `idleTimeout (LATCHKEY_IDLE_TIMEOUT=2h)`, … */
function origin(key: ConfigKey, value: unknown, source: ConfigSource | undefined): string {
  const shownValue = key === 'store' && typeof value === 'string' ? redact(value) : String(value);
  switch (source?.kind) {
    case 'flag':
      return BOOLEAN_KEYS.has(key)
        ? `${key} (${flagOf(key)})`
        : `${key} (${flagOf(key)} ${shownValue})`;
    case 'env':
      return `${key} (${envOf(key)}=${shownValue})`;
    case 'file':
      return `${key} (${JSON.stringify(value)} in ${source.file})`;
    default:
      return value === undefined ? key : `${key} (default ${shownValue})`;
  }
}

/** ` (did you mean "idleTimeout"?)` for `idle-timeout`, `IDLE_TIMEOUT`, `idle_timeout`… */
function suggestion(key: string): string {
  const bare = key
    .replace(/^(--|latchkey_)/i, '')
    .replace(/[-_]/g, '')
    .toLowerCase();
  const match = KEYS.find((known) => known.toLowerCase() === bare);
  return match ? ` (did you mean "${match}"?)` : '';
}

export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/** `1800000` → `30m`: durations as a person writes them. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Every key's effective value as shown by `latchkey config check`: secrets masked. */
export function describeConfig(
  config: ServeConfig,
): Record<ConfigKey, string | number | boolean | string[] | null> {
  return {
    host: config.host,
    port: config.port,
    db: config.db,
    store: config.store === undefined ? null : redact(config.store),
    cache: config.cache,
    idleTimeout: formatDuration(config.idleTimeout),
    absoluteTimeout: formatDuration(config.absoluteTimeout),
    touchInterval: formatDuration(config.touchInterval),
    reauthWindow: formatDuration(config.reauthWindow),
    allowSignup: config.allowSignup,
    cookieName: config.cookieName,
    trustProxy: [...config.trustedProxies],
    behindHttps: config.behindHttps,
    tlsCert: config.tls?.cert ?? null,
    tlsKey: config.tls?.key ?? null,
    // The path only: the secret itself is never read here, let alone printed.
    secretFile: config.secretFile,
    auditLog: config.auditLog,
    logLevel: config.logLevel,
    metrics: config.metrics,
    metricsPort: config.metricsPort,
    sweepInterval: formatDuration(config.sweepInterval),
    forwardAuthHosts: [...config.forwardAuthHosts],
  };
}

export { KEYS as CONFIG_KEYS };
