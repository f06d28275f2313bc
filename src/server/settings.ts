import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ConfigError } from '../index.js';
import {
  addresses,
  bearerToken,
  cookieName,
  domain,
  duration,
  flag,
  forwardAuthPolicies,
  hosts,
  type Kind,
  logLevel,
  origins,
  port,
  type Shown,
  secretKeys,
  storeUrl,
  text,
  workerCount,
} from './setting-kinds.js';
import { RULES } from './setting-rules.js';
import { redact } from './stores.js';

export type { LogLevel } from './setting-kinds.js';

export interface SettingRow {
  /** The name in the config file; the flag (`--idle-timeout`) and variable are derived from it. */
  readonly key: string;
  readonly kind: Kind<unknown>;
  /** Read like any input when no source sets the key (or sets it blank). */
  readonly default?: string;
  /** For the usage text; the variable and the default are added to it. */
  readonly help: string;
}

/** Every setting of `latchkey serve` and the CLI, once: everything else is derived from here. */
const SETTINGS = [
  {
    key: 'host',
    kind: text('HOST', { required: true }),
    default: '127.0.0.1',
    help: 'address to listen on',
  },
  { key: 'port', kind: port, default: '3000', help: 'port, 0 for any free one' },
  { key: 'db', kind: text('FILE'), default: './latchkey.db', help: 'SQLite file' },
  {
    key: 'store',
    kind: storeUrl,
    help: 'sessions and login-attempt counters in redis://…, postgres://… or memory instead of the SQLite file',
  },
  {
    key: 'users',
    kind: storeUrl,
    help: 'users and remember-me tokens in postgres://…, redis://… or memory (demos only); default: the --store when it is durable (SQLite, PostgreSQL, Redis), else the SQLite file',
  },
  { key: 'cache', kind: flag, help: 'validation cache in front of Redis or PostgreSQL sessions' },
  {
    key: 'cacheMaxStaleness',
    kind: duration(20),
    default: '1s',
    help: 'with --cache: longest a cached session may outlive its revocation when the store stops answering without closing the connection',
  },
  {
    key: 'idleTimeout',
    kind: duration(),
    default: '30m',
    help: 'inactivity that ends a session',
  },
  { key: 'absoluteTimeout', kind: duration(), default: '12h', help: 'lifetime of a session' },
  {
    key: 'touchInterval',
    kind: duration(),
    default: '1m',
    help: 'least time between refresh writes',
  },
  {
    key: 'reauthWindow',
    kind: duration(),
    default: '10m',
    help: 'how long after a password login sensitive changes need no password again',
  },
  {
    key: 'rememberGrace',
    kind: duration(),
    default: '10s',
    help: 'how long a used remember-me token still works (parallel tabs); a later replay is theft and signs the user out everywhere; at most 1m',
  },
  { key: 'allowSignup', kind: flag, help: 'let visitors create accounts' },
  {
    key: 'cookieName',
    kind: cookieName,
    default: '__Host-session',
    help: 'session cookie name',
  },
  {
    key: 'insecureCookieName',
    kind: flag,
    help: 'allow a --cookie-name without the __Host- prefix, which a sibling subdomain can set or shadow (warned at start)',
  },
  {
    key: 'trustProxy',
    kind: addresses,
    help: 'comma-separated proxy addresses whose X-Forwarded-For and X-Request-Id are believed',
  },
  {
    key: 'behindHttps',
    kind: flag,
    help: 'a proxy in front terminates HTTPS; required to listen on an address other than localhost, 127.0.0.1 or ::1',
  },
  { key: 'tlsCert', kind: text('FILE'), help: 'serve HTTPS with this PEM certificate' },
  { key: 'tlsKey', kind: text('FILE'), help: 'and this PEM private key' },
  {
    key: 'secretFile',
    kind: text('FILE'),
    default: './latchkey.secret',
    help: 'secret that signs CSRF tokens, created 0600 if absent; share it between servers of one site',
  },
  {
    key: 'auditLog',
    kind: text('FILE'),
    help: 'audit log (JSON lines) file; standard output when unset',
  },
  {
    key: 'logLevel',
    kind: logLevel,
    default: 'info',
    help: 'fatal, error, warn, info, debug, trace or silent',
  },
  { key: 'metrics', kind: flag, help: 'serve Prometheus metrics at GET /metrics' },
  { key: 'metricsPort', kind: port, help: 'serve GET /metrics on this port instead, same host' },
  {
    key: 'metricsToken',
    kind: bearerToken,
    help: 'GET /metrics needs Authorization: Bearer TOKEN; required for --metrics on an address other than loopback',
  },
  {
    key: 'sweepInterval',
    kind: duration(100),
    default: '5m',
    help: 'delete expired sessions, remember-me tokens and login-attempt windows this often, ±20%; 0 turns it off',
  },
  {
    key: 'forwardAuthHosts',
    kind: hosts,
    help: 'comma-separated hosts the login page may return to by absolute URL (?next= or ?rd=), for nginx auth_request and the like',
  },
  {
    key: 'forwardAuthPolicy',
    kind: forwardAuthPolicies,
    help: 'comma-separated HOST=two_factor (or one_factor): /auth/verify sends a session without a second factor to step up for HOST',
  },
  {
    key: 'secretKey',
    kind: secretKeys,
    help: 'comma-separated keys sealing TOTP secrets at rest (AES-256-GCM), newest first; default derived from the secret file',
  },
  {
    key: 'rpId',
    kind: domain,
    help: 'turns passkeys on: the domain they are bound to (example.com); default the host of the first --origin',
  },
  {
    key: 'origin',
    kind: origins,
    help: 'turns passkeys on: comma-separated origins of the login pages (https://example.com); default https://RP-ID',
  },
  {
    key: 'workers',
    kind: workerCount,
    default: '1',
    help: 'server processes sharing the port (node:cluster), or auto for one per available core; a crashed one is restarted',
  },
] as const satisfies readonly SettingRow[];

type Setting = (typeof SETTINGS)[number];
export type SettingKey = Setting['key'];
type ValueOf<R extends Setting> =
  R['kind'] extends Kind<infer T> ? (R extends { default: string } ? NonNullable<T> : T) : never;

/** The effective settings; `null` is "not set" for a setting without a default. */
export type Settings = { readonly [R in Setting as R['key']]: ValueOf<R> };

export const SETTING_KEYS: readonly SettingKey[] = SETTINGS.map((row) => row.key);

/** `idleTimeout` → `--idle-timeout`. */
export function flagOf(key: SettingKey): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/** `idleTimeout` → `LATCHKEY_IDLE_TIMEOUT`. */
export function envOf(key: SettingKey): string {
  return `LATCHKEY_${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

/** The declaration of setting `key`. */
export function settingRow(key: SettingKey): SettingRow {
  return SETTINGS.find((row) => row.key === key) as SettingRow;
}

/** The `parseArgs` options for `--config` and the flags of `keys`. */
export function settingOptions(
  keys: readonly SettingKey[] = SETTING_KEYS,
): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = { config: { type: 'string' } };
  for (const key of keys) {
    options[flagOf(key).slice(2)] = {
      type: settingRow(key).kind.arg === null ? 'boolean' : 'string',
    };
  }
  return options;
}

/** Where a setting came from. */
export type SettingSource =
  | { readonly kind: 'flag' }
  | { readonly kind: 'env' }
  | { readonly kind: 'file'; readonly file: string }
  | { readonly kind: 'default' };

export interface ResolvedSettings {
  readonly settings: Settings;
  /** Where each key's value came from. */
  readonly sources: Readonly<Record<SettingKey, SettingSource>>;
  /** The `--config` file read, or null. */
  readonly configFile: string | null;
}

/** Parsed flags by name (`idle-timeout`, `config`); other names are ignored. */
export type FlagValues = Readonly<Record<string, string | boolean | undefined>>;

/**
 * The settings from flags, then `LATCHKEY_*` variables, then the `--config` file (or
 * `LATCHKEY_CONFIG`), then defaults. Throws {@link ConfigError} with a one-line reason naming the
 * key and where it was set for anything unusable.
 */
export function resolveSettings(flags: FlagValues, env: NodeJS.ProcessEnv): ResolvedSettings {
  const configFile =
    (typeof flags.config === 'string' ? flags.config : env.LATCHKEY_CONFIG) || null;
  const file = configFile === null ? {} : readConfigFile(configFile);
  const input: Record<string, unknown> = {};
  const sources = {} as Record<SettingKey, SettingSource>;
  const values: Record<string, unknown> = {};
  for (const row of SETTINGS) {
    const { key } = row;
    const fromFlag = flags[flagOf(key).slice(2)];
    if (fromFlag !== undefined) {
      input[key] = fromFlag === true ? 'true' : fromFlag;
      sources[key] = { kind: 'flag' };
    } else if (env[envOf(key)] !== undefined) {
      input[key] = env[envOf(key)];
      sources[key] = { kind: 'env' };
    } else if (configFile !== null && Object.hasOwn(file, key)) {
      input[key] = file[key];
      sources[key] = { kind: 'file', file: configFile };
    } else {
      input[key] = 'default' in row ? row.default : undefined;
      sources[key] = { kind: 'default' };
    }
    let checked = row.kind.parse(input[key]);
    if (checked.ok && checked.value === null && 'default' in row) {
      checked = row.kind.parse(row.default);
    }
    if (!checked.ok) throw new ConfigError(problem(key, checked.reason, sources[key]));
    values[key] = checked.value;
  }
  const unknown = Object.keys(file).find((key) => !SETTING_KEYS.some((known) => known === key));
  if (unknown !== undefined) {
    throw new ConfigError(`${configFile}: unknown key "${unknown}"${suggestion(unknown)}`);
  }
  const settings = values as Settings;
  const broken = RULES.find((rule) => rule.broken(settings));
  if (broken) {
    throw new ConfigError(
      broken.message.replace(/\{(\w+)\}/g, (_, key: SettingKey) =>
        origin(key, input[key], sources[key]),
      ),
    );
  }
  return { settings, sources, configFile };
}

/** `latchkey serve`'s settings from its command line and the environment; null for `--help`. */
export function resolveServeSettings(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): ResolvedSettings | null {
  const { values } = parseArgs({
    args: [...argv],
    options: { ...settingOptions(), help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  return values.help ? null : resolveSettings(values, env);
}

export function readServeSettings(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Settings | null {
  return resolveServeSettings(argv, env)?.settings ?? null;
}

/** Every key's effective value as `latchkey config check` shows it: secrets masked. */
export function describeSettings(settings: Settings): Record<SettingKey, Shown> {
  const shown = {} as Record<SettingKey, Shown>;
  for (const row of SETTINGS as readonly SettingRow[]) {
    const key = row.key as SettingKey;
    shown[key] = row.kind.show(settings[key]);
  }
  return shown;
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
function problem(key: SettingKey, reason: string, source: SettingSource): string {
  if (source.kind === 'file') return `${source.file}: ${key}: ${reason}`;
  if (source.kind === 'env') return `${flagOf(key)}: ${reason} (from ${envOf(key)})`;
  return `${flagOf(key)}: ${reason}`;
}

/** `idleTimeout (--idle-timeout 2h)`, `idleTimeout (LATCHKEY_IDLE_TIMEOUT=2h)`, … */
function origin(key: SettingKey, value: unknown, source: SettingSource): string {
  // Only a store URL can hold a password; masking the rest changes nothing.
  const shown = typeof value === 'string' ? redact(value) : String(value);
  switch (source.kind) {
    case 'flag':
      return settingRow(key).kind.arg === null
        ? `${key} (${flagOf(key)})`
        : `${key} (${flagOf(key)} ${shown})`;
    case 'env':
      return `${key} (${envOf(key)}=${shown})`;
    case 'file':
      return `${key} (${JSON.stringify(value)} in ${source.file})`;
    default:
      return value === undefined ? key : `${key} (default ${shown})`;
  }
}

/** ` (did you mean "idleTimeout"?)` for `idle-timeout`, `IDLE_TIMEOUT`, `idle_timeout`… */
function suggestion(key: string): string {
  const bare = key
    .replace(/^(--|latchkey_)/i, '')
    .replace(/[-_]/g, '')
    .toLowerCase();
  const match = SETTING_KEYS.find((known) => known.toLowerCase() === bare);
  return match ? ` (did you mean "${match}"?)` : '';
}
