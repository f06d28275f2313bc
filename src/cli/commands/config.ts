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
import { fail, print, printTable } from '../print.js';

/** Exit codes: 0 done, 2 a bad setting. */
const USAGE_ERROR = 2;

export const CONFIG_USAGE = `Usage: latchkey config check [--config FILE] [--json] [serve options]

Reads the configuration exactly as "latchkey serve" would (flags, then LATCHKEY_* variables, then
the --config file, then defaults), prints every setting with where it came from, and exits 0; a
bad setting exits 2 with the key and the reason. Secrets are masked: a store URL's password is
shown as ***, and the secret file is named, never read. The store is not contacted.

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
  if (json) {
    print(JSON.stringify(shown, null, 2));
    return 0;
  }
  const sources = resolved.sources;
  printTable(
    ['KEY', 'VALUE', 'FROM'],
    SETTING_KEYS.map((key) => {
      const value = shown[key];
      const text =
        value === null ? '-' : Array.isArray(value) ? value.join(',') || '-' : String(value);
      return [key, text, sourceOf(key, sources[key])];
    }),
  );
  return 0;
}

function sourceOf(key: SettingKey, from: SettingSource): string {
  if (from.kind === 'flag') return flagOf(key);
  if (from.kind === 'env') return envOf(key);
  if (from.kind === 'file') return from.file;
  return 'default';
}
