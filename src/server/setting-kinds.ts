import { availableParallelism } from 'node:os';
import { HostCookie, parseDuration } from '../index.js';
import { normalizeIp } from './request.js';
import { isStoreUrl, redact, STORE_URLS } from './stores.js';

// The kinds of value a setting holds: how each is read from a flag or variable (always a string)
// or from the config file (any JSON), and how `config check` shows it. Reasons say why; the
// caller adds which key and where it was set.

type Check<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string };

/** What `config check` prints for a value. */
export type Shown = string | number | boolean | string[] | null;

export interface Kind<T> {
  /** The flag's argument in the usage text (`PORT`), or null for an on/off flag. */
  readonly arg: string | null;
  /** The value, or null for "not set" (the row's default applies); `value` is undefined when unset. */
  parse(value: unknown): Check<T>;
  show(value: T): Shown;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

const ok = <T>(value: T): Check<T> => ({ ok: true, value });
const bad = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

/** A string; blank is "not set", or refused with `required`. */
export function text(arg: string, options: { required?: boolean } = {}): Kind<string | null> {
  return {
    arg,
    parse(value) {
      if (value === undefined) return ok(null);
      if (typeof value !== 'string') return bad(`expected a string, got ${shown(value)}`);
      if (value.trim() === '') return options.required ? bad('must not be empty') : ok(null);
      return ok(value);
    },
    show: (value) => value,
  };
}

export const port: Kind<number | null> = {
  arg: 'PORT',
  parse(value) {
    if (value === undefined || value === '') return ok(null);
    const string = String(value);
    const number = Number(string);
    if (
      (typeof value !== 'string' && typeof value !== 'number') ||
      !/^\d+$/.test(string) ||
      number > 65535
    ) {
      return bad(`${shown(value)} is not a port number (0 to 65535)`);
    }
    return ok(number);
  },
  show: (value) => value,
};

export const flag: Kind<boolean> = {
  arg: null,
  parse(value) {
    if (value === undefined || value === '') return ok(false);
    if (typeof value === 'boolean') return ok(value);
    const normal = typeof value === 'string' ? value.toLowerCase() : null;
    if (normal !== null && ['1', 'true', 'yes', 'on'].includes(normal)) return ok(true);
    if (normal !== null && ['0', 'false', 'no', 'off'].includes(normal)) return ok(false);
    return bad(`${shown(value)} is not true or false`);
  },
  show: (value) => value,
};

/** Milliseconds; a bare number (flags and variables are strings) is milliseconds, as in the library. */
export function duration(least = 0): Kind<number> {
  return {
    arg: 'DUR',
    parse(value) {
      try {
        const ms = parseDuration(
          typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value,
          '',
        );
        if (ms !== 0 && ms < least) {
          return bad(`${shown(value)} is too short (0 or at least ${least} ms)`);
        }
        return ok(ms);
      } catch (error) {
        return bad((error as Error).message.replace(/^: /, ''));
      }
    },
    show: formatDuration,
  };
}

/** A comma-separated string, or (in the file) an array of strings. */
function list(value: unknown): Check<string[]> {
  if (value === undefined) return ok([]);
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items) || !items.every((item) => typeof item === 'string')) {
    return bad('expected a comma-separated string or an array of strings');
  }
  return ok(items.map((item) => item.trim()).filter((item) => item !== ''));
}

export const addresses: Kind<ReadonlySet<string>> = {
  arg: 'IPS',
  parse(value) {
    const entries = list(value);
    if (!entries.ok) return entries;
    const set = new Set<string>();
    for (const entry of entries.value) {
      const address = normalizeIp(entry);
      if (address === null) return bad(`"${entry}" is not an IP address`);
      set.add(address);
    }
    return ok(set);
  },
  show: (value) => [...value],
};

/** Host names or `host:port`, lowercase. */
export const hosts: Kind<readonly string[]> = {
  arg: 'H',
  parse(value) {
    const entries = list(value);
    if (!entries.ok) return entries;
    const out: string[] = [];
    for (const entry of entries.value) {
      const host = entry.toLowerCase();
      if (!/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?$/.test(host)) {
        return bad(`"${entry}" is not a host name or host:port`);
      }
      out.push(host);
    }
    return ok(out);
  },
  show: (value) => [...value],
};

/** Web origins (`https://example.com`, `http://localhost:3000`): scheme, host and port only. */
export const origins: Kind<readonly string[]> = {
  arg: 'ORIGINS',
  parse(value) {
    const entries = list(value);
    if (!entries.ok) return entries;
    const out: string[] = [];
    for (const entry of entries.value) {
      let url: URL | null = null;
      try {
        url = new URL(entry);
      } catch {}
      if (!url || url.origin !== entry.replace(/\/$/, '').toLowerCase()) {
        return bad(`"${entry}" is not an origin (scheme://host[:port], no path)`);
      }
      out.push(url.origin);
    }
    return ok(out);
  },
  show: (value) => [...value],
};

/** A relying-party id for passkeys: a domain name, lowercase. */
export const domain: Kind<string | null> = {
  arg: 'DOMAIN',
  parse(value) {
    const checked = text('DOMAIN').parse(value);
    if (!checked.ok || checked.value === null) return checked;
    const name = checked.value.toLowerCase();
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(name)) {
      return bad(`"${checked.value}" is not a domain name`);
    }
    return ok(name);
  },
  show: (value) => value,
};

const urlText = text('URL');
const nameText = text('NAME', { required: true });

/** A store URL: shown and reported with any password masked. */
export const storeUrl: Kind<string | null> = {
  arg: 'URL',
  parse(value) {
    const checked = urlText.parse(value);
    if (!checked.ok || checked.value === null || isStoreUrl(checked.value)) return checked;
    return bad(`"${redact(checked.value)}" is not a ${STORE_URLS} URL`);
  },
  show: (value) => value && redact(value),
};

export const cookieName: Kind<string | null> = {
  arg: 'NAME',
  parse(value) {
    const checked = nameText.parse(value);
    if (!checked.ok || checked.value === null) return checked;
    try {
      // The prefix is a rule across settings (--insecure-cookie-name); here only the syntax.
      new HostCookie(checked.value, { allowUnprefixed: true });
    } catch (error) {
      return bad((error as Error).message);
    }
    return checked;
  },
  show: (value) => value,
};

/** Keys that seal second-factor secrets: comma-separated, the first seals, each 32+ characters. */
export const secretKeys: Kind<readonly string[]> = {
  arg: 'KEYS',
  parse(value) {
    const entries = list(value);
    if (!entries.ok) return entries;
    if (!entries.value.every((key) => /^[\x21-\x2b\x2d-\x7e]{32,}$/.test(key))) {
      return bad(
        'each key must be at least 32 printable ASCII characters, without spaces or commas',
      );
    }
    return ok(entries.value);
  },
  show: (value) => value.map(() => '***'),
};

/** How much sign-in a forward-auth host needs: `one_factor` (a session) or `two_factor` (AAL2). */
export type ForwardAuthLevel = 'one_factor' | 'two_factor';

/** `host=two_factor,other=one_factor`: per-host forward-auth policies, like Authelia's. */
export const forwardAuthPolicies: Kind<ReadonlyMap<string, ForwardAuthLevel>> = {
  arg: 'HOST=LEVEL',
  parse(value) {
    const entries = list(value);
    if (!entries.ok) return entries;
    const policies = new Map<string, ForwardAuthLevel>();
    for (const entry of entries.value) {
      const [host = '', level = '', ...rest] = entry.split('=');
      const checked = hosts.parse(host);
      if (rest.length > 0 || !checked.ok || checked.value.length !== 1) {
        return bad(`"${entry}" is not HOST=one_factor or HOST=two_factor`);
      }
      if (level !== 'one_factor' && level !== 'two_factor') {
        return bad(`"${entry}": the level is one_factor or two_factor`);
      }
      policies.set(checked.value[0] as string, level);
    }
    return ok(policies);
  },
  show: (value) => [...value].map(([host, level]) => `${host}=${level}`),
};

const tokenText = text('TOKEN');

/** A bearer token: printable ASCII, at least 16 characters; `config check` shows it masked. */
export const bearerToken: Kind<string | null> = {
  arg: 'TOKEN',
  parse(value) {
    const checked = tokenText.parse(value);
    if (!checked.ok || checked.value === null) return checked;
    if (!/^[\x21-\x7e]{16,}$/.test(checked.value)) {
      return bad('must be at least 16 printable ASCII characters, without spaces');
    }
    return checked;
  },
  show: (value) => value && '***',
};

/** How many server processes: a positive integer, or `auto` for one per available core. */
export const workerCount: Kind<number | 'auto' | null> = {
  arg: 'N',
  parse(value) {
    if (value === undefined || value === '') return ok(null);
    if (typeof value === 'string' && value.trim().toLowerCase() === 'auto') return ok('auto');
    const string = String(value).trim();
    if ((typeof value !== 'string' && typeof value !== 'number') || !/^[1-9]\d*$/.test(string)) {
      return bad(`${shown(value)} is not a positive whole number or auto`);
    }
    return ok(Number(string));
  },
  show: (value) => (value === 'auto' ? `auto (${availableParallelism()})` : value),
};

/** The number of processes `workers` stands for: `auto` is `os.availableParallelism()`. */
export function workersOf(value: number | 'auto'): number {
  return value === 'auto' ? availableParallelism() : value;
}

export const logLevel: Kind<LogLevel> = {
  arg: 'LEVEL',
  parse(value) {
    const level = typeof value === 'string' ? value.toLowerCase() : value;
    const known = LOG_LEVELS.find((candidate) => candidate === level);
    return known ? ok(known) : bad(`${shown(value)} is not one of ${LOG_LEVELS.join(', ')}`);
  },
  show: (value) => value,
};

/** `1800000` → `30m`: durations as a person writes them. */
function formatDuration(ms: number): string {
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
