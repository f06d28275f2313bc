import {
  describeSettings,
  envOf,
  flagOf,
  type ResolvedSettings,
  resolveServeSettings,
  SETTING_KEYS,
  type SettingKey,
  type SettingSource,
} from '../../server/settings.js';
import { describeTarget, planStores, type StorePlan } from '../../server/stores.js';
import { fail, print, printTable } from '../print.js';

/** Exit codes: 0 done, 2 a bad setting. */
const USAGE_ERROR = 2;

export const CONFIG_USAGE = `Usage: latchkey config check [--config FILE] [--json] [serve options]

Reads the configuration exactly as "latchkey serve" would (flags, then LATCHKEY_* variables, then
the --config file, then defaults), prints every setting with where it came from, and exits 0; a
bad setting exits 2 with the key and the reason. Then it shows where sessions and users live
(--store and --users; without --users, users share a durable --store, else go to the SQLite
--db file). Secrets are masked: a store URL's password is shown as ***, and the secret file is
named, never read. No store is contacted.

  --json             one JSON object of settings instead of a table
  -h, --help         show this help

Serve options: see latchkey serve --help.`;

/** `latchkey config check [options]`: gives the exit code. */
export function configCheck(argv: readonly string[]): number {
  const json = argv.includes('--json');
  const rest = argv.filter((arg) => arg !== '--json');
  if (rest.includes('--help') || rest.includes('-h')) {
    print(CONFIG_USAGE);
    return 0;
  }
  let resolved: ResolvedSettings | null;
  try {
    resolved = resolveServeSettings(rest, process.env);
  } catch (error) {
    fail(`config: ${(error as Error).message}`);
    return USAGE_ERROR;
  }
  if (resolved === null) return 0;
  const shown = describeSettings(resolved.settings);
  const sources = resolved.sources;
  const stores = storesOf(planStores(resolved.settings), sources);
  if (json) {
    print(JSON.stringify({ ...shown, stores }, null, 2));
    return 0;
  }
  printTable(
    ['KEY', 'VALUE', 'FROM'],
    SETTING_KEYS.map((key) => {
      const value = shown[key];
      const text =
        value === null ? '-' : Array.isArray(value) ? value.join(',') || '-' : String(value);
      return [key, text, sourceOf(key, sources[key])];
    }),
  );
  print('');
  printTable(
    ['STORE', 'HOLDS', 'AT', 'FROM'],
    [
      ['sessions', 'sessions, login-attempt counters', stores.sessions.at, stores.sessions.from],
      ['users', 'users, remember-me tokens', stores.users.at, stores.users.from],
    ],
  );
  return 0;
}

interface ShownStore {
  /** The SQLite file or the URL, password masked. */
  readonly at: string;
  /** Which setting put it there. */
  readonly from: string;
}

/** Where sessions and users live, and which setting (or rule) sent each there. */
function storesOf(
  plan: StorePlan,
  sources: ResolvedSettings['sources'],
): { sessions: ShownStore; users: ShownStore; shared: boolean } {
  const sessionsFrom =
    plan.sessions.url === null
      ? `${sourceOf('db', sources.db)} (SQLite)`
      : sourceOf('store', sources.store);
  const usersFrom = {
    given: sourceOf('users', sources.users),
    'same as store': `same store as sessions (no --users, and ${plan.sessions.url === null ? 'SQLite' : 'the store'} is durable)`,
    'sqlite default': `${sourceOf('db', sources.db)} (SQLite: no --users, and the --store is not durable)`,
  }[plan.usersReason];
  return {
    sessions: { at: describeTarget(plan.sessions), from: sessionsFrom },
    users: { at: describeTarget(plan.users), from: usersFrom },
    shared: plan.shared,
  };
}

function sourceOf(key: SettingKey, from: SettingSource): string {
  if (from.kind === 'flag') return flagOf(key);
  if (from.kind === 'env') return envOf(key);
  if (from.kind === 'file') return from.file;
  return 'default';
}
