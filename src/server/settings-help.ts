import { envOf, flagOf, SETTING_KEYS, type SettingKey, settingRow } from './settings.js';

/** Usage texts of `latchkey serve` and the CLI, derived from the settings table. */

const COLUMN = 27;
const WIDTH = 100;

/** The usage lines of `--config` and of the flags of `keys`, each naming its variable and default. */
export function settingsHelp(keys: readonly SettingKey[] = SETTING_KEYS): string {
  const config = optionLine(
    '--config FILE',
    'JSON file of settings, keys in camelCase (idleTimeout, …); flags beat LATCHKEY_* variables, which beat the file (LATCHKEY_CONFIG)',
  );
  const lines = keys.map((key) => {
    const row = settingRow(key);
    const env = envOf(key);
    const arg = row.kind.arg === null ? '' : ` ${row.kind.arg}`;
    const note =
      row.kind.arg === null ? `${env}=1` : row.default ? `${env}, default ${row.default}` : env;
    return optionLine(`${flagOf(key)}${arg}`, `${row.help} (${note})`);
  });
  return [config, ...lines].join('\n');
}

/** `  --flag ARG   help…`, the help wrapped to {@link WIDTH} columns: one line of a usage text. */
export function optionLine(flagText: string, help: string): string {
  const lines: string[] = [];
  let line = `  ${flagText}`.padEnd(COLUMN - 1);
  for (const word of help.split(' ')) {
    if (line.length + 1 + word.length > WIDTH && line.trim() !== flagText) {
      lines.push(line);
      line = ' '.repeat(COLUMN - 1);
    }
    line += ` ${word}`;
  }
  return [...lines, line].join('\n');
}

export const SERVE_USAGE = `Usage: latchkey serve [options]

Runs the login server: HTML pages, a JSON API and health checks, over plain HTTP.

Options (each also read from the environment variable shown, then from the --config file):
${settingsHelp()}
${optionLine('-h, --help', 'show this help')}

Durations: 500ms, 2s, 30m, 12h, 7d.`;
