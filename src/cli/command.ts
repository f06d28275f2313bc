import type { ParseArgsConfig } from 'node:util';
import type { Latchkey, UserInfo } from '../index.js';
import type { SettingKey } from '../server/settings.js';
import { optionLine, settingsHelp } from '../server/settings-help.js';
import type { OpenedStores } from '../server/stores.js';
import { Failure } from './errors.js';

/** A `latchkey <group> <verb>` command that works on the store. */
export interface Command {
  readonly usage: string;
  /** Names of the positional arguments, all required. */
  readonly args: readonly string[];
  readonly options?: ParseArgsConfig['options'];
  run(input: CommandInput): Promise<void>;
}

export interface CommandInput {
  readonly auth: Latchkey;
  /** The sessions and users stores, as `latchkey serve` opens them. */
  readonly stores: OpenedStores;
  readonly args: readonly string[];
  readonly values: Record<string, string | boolean | undefined>;
}

/** The settings every command reads, as `latchkey serve` does. */
export const STORE_SETTINGS: readonly SettingKey[] = ['db', 'store', 'users'];

/** A command's usage text: what it does, its own options, then the store options. */
export function usage(
  synopsis: string,
  about: string,
  options: readonly (readonly [string, string])[] = [],
): string {
  const own = [...options, ['-h, --help', 'show this help'] as const]
    .map(([name, help]) => optionLine(name, help))
    .join('\n');
  return `Usage: latchkey ${synopsis} [store options]

${about}

${own}

Store options (flags, then LATCHKEY_* variables, then the --config file, as for latchkey serve):
${settingsHelp(STORE_SETTINGS)}`;
}

export async function findUser(auth: Latchkey, name: string | undefined): Promise<UserInfo> {
  const user = await auth.findUser(name ?? '');
  if (!user) throw new Failure(`no user named "${name}"`);
  return user;
}
