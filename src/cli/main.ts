#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { auditLog } from '../audit.js';
import { ConfigError, CredentialError, Latchkey } from '../index.js';
import { startServer } from '../server/serve.js';
import {
  readServeSettings,
  resolveSettings,
  type Settings,
  settingOptions,
} from '../server/settings.js';
import { SERVE_USAGE } from '../server/settings-help.js';
import { type OpenedStores, openStores, takesCache } from '../server/stores.js';
import {
  leaveCluster,
  reportReady,
  runPrimary,
  wantsCluster,
  workerRole,
} from '../server/workers.js';
import { type Command, type CommandInput, STORE_SETTINGS } from './command.js';
import { CONFIG_USAGE, configCheck } from './commands/config.js';
import { MAINTENANCE_COMMANDS } from './commands/maintenance.js';
import { SESSION_COMMANDS } from './commands/sessions.js';
import { USER_COMMANDS } from './commands/user.js';
import { Failure, UsageError } from './errors.js';
import { fail, print } from './print.js';

/** Exit codes: 0 done, 1 the operation failed, 2 the command line (or a setting) is wrong. */
const FAILED = 1;
const USAGE_ERROR = 2;

const USAGE = `Usage: latchkey <command> [options]

Commands:
  serve                          run the login server (latchkey serve --help)
  config check                   print the server's effective configuration, secrets masked
  user add <name>                create an account
  user list                      list accounts
  user remove <name>             delete an account and end its sessions
  user passwd <name>             set a new password and end the user's sessions
  user disable <name>            block logins and end all of the user's sessions
  user enable <name>             allow logins again
  user mfa list <name>           list the user's second factors and recovery codes left
  user mfa reset <name>          remove all of the user's second factors (audited)
  sessions list [--user NAME]    list live sessions
  sessions revoke <id>           end one session
  sessions revoke-user <name>    end all of a user's sessions
  sweep                          delete expired sessions and print how many
  migrate                        bring a PostgreSQL store's schema up to date

Every command reads the stores as latchkey serve does: --config FILE, --db FILE (default
./latchkey.db), --store URL (sessions: redis://… or postgres://…) and --users URL (users and
remember-me tokens), or LATCHKEY_CONFIG, LATCHKEY_DB, LATCHKEY_STORE and LATCHKEY_USERS; and
takes --help. "user" commands work on the users store, "sessions" on the sessions store, and
"sweep" sweeps both.
Changes take effect on a running server that uses the same store at its next request.`;

const COMMANDS: Readonly<Record<string, Command>> = {
  ...USER_COMMANDS,
  ...SESSION_COMMANDS,
  ...MAINTENANCE_COMMANDS,
};

/** A session id (SHA-256, base64url) that starts with "-", so parseArgs would read it as flags. */
const SESSION_ID_LIKE = /^-[A-Za-z0-9_-]{42}$/;

async function main(argv: readonly string[]): Promise<number> {
  const [first, second] = argv;
  if (first === 'serve') return serve(argv.slice(1));
  if (
    first === 'config' &&
    (second === 'check' || second === undefined || second.startsWith('-'))
  ) {
    if (second === 'check') return configCheck(argv.slice(2));
    if (second === '--help' || second === '-h') {
      print(CONFIG_USAGE);
      return 0;
    }
    fail(`missing command: latchkey config check\n\n${CONFIG_USAGE}`);
    return USAGE_ERROR;
  }
  // The longest command the words name: "user mfa list", "user add", "sweep".
  const name =
    [3, 2, 1].map((words) => argv.slice(0, words).join(' ')).find((words) => COMMANDS[words]) ??
    first ??
    '';
  const command = COMMANDS[name];
  if (!command) {
    const group = first === 'user' || first === 'sessions' ? 2 : 1;
    if (argv[group - 1] === '--help' || argv[group - 1] === '-h') {
      print(USAGE);
      return 0;
    }
    const missing = argv.slice(0, group).some((word) => word.startsWith('-'));
    if (argv.length < group || missing) fail(`missing command\n\n${USAGE}`);
    else fail(`unknown command "${argv.slice(0, group).join(' ')}" (see latchkey --help)`);
    return USAGE_ERROR;
  }
  return runCommand(command, argv.slice(name.split(' ').length));
}

async function runCommand(command: Command, argv: readonly string[]): Promise<number> {
  let values: CommandInput['values'];
  let args: string[];
  try {
    // A session id is base64url and may begin with "-": one of that shape is never an option.
    const ids = argv.filter((arg) => SESSION_ID_LIKE.test(arg));
    ({ values, positionals: args } = parseArgs({
      args: argv.filter((arg) => !SESSION_ID_LIKE.test(arg)),
      allowPositionals: true,
      options: {
        ...settingOptions(STORE_SETTINGS),
        help: { type: 'boolean', short: 'h' },
        ...command.options,
      },
    }));
    if (values.help) {
      print(command.usage);
      return 0;
    }
    args = [...ids, ...args];
    if (args.length !== command.args.length) {
      const expected = command.args.map((arg) => `<${arg}>`).join(' ') || 'no arguments';
      throw new UsageError(
        `expected ${expected}, got ${args.length === 0 ? 'none' : args.join(' ')}`,
      );
    }
  } catch (error) {
    fail(`${(error as Error).message}\n\n${command.usage}`);
    return USAGE_ERROR;
  }

  let settings: Settings;
  let stores: OpenedStores;
  try {
    settings = resolveSettings(values, process.env).settings;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    fail(error.message);
    return USAGE_ERROR;
  }
  try {
    // With the cache on, a PostgreSQL write waits until every server's cache has dropped the
    // session, so a revocation from the CLI is as immediate as one from a server.
    stores = await openStores({ ...settings, cache: takesCache(settings.store) });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    fail(error.message);
    return FAILED;
  }
  try {
    // Users (and their remember-me tokens) in the users store, sessions in the sessions store:
    // `user disable` ends both, wherever each lives.
    // Admin changes (ended sessions, a second-factor reset) are audit lines on stderr.
    const auth = new Latchkey({
      store: stores.sessions,
      users: stores.users,
      remember: { store: stores.users },
      // The CLI lists and deletes factors but never seals or opens one: any key will do.
      secondFactor: { store: stores.users, secretKey: randomBytes(32) },
      onEvent: auditLog(pino.destination(2)),
    });
    await command.run({ auth, stores, args, values });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      fail(error.message);
      return USAGE_ERROR;
    }
    if (error instanceof Failure || error instanceof CredentialError) {
      fail(error.message);
      return FAILED;
    }
    throw error;
  } finally {
    await stores.close();
  }
}

async function serve(argv: readonly string[]): Promise<number> {
  let settings: Settings | null;
  try {
    settings = readServeSettings(argv, process.env);
  } catch (error) {
    fail(`serve: ${(error as Error).message} (see latchkey serve --help)`);
    return USAGE_ERROR;
  }
  if (settings === null) {
    print(SERVE_USAGE);
    return 0;
  }
  // A cluster worker re-runs this script with the same arguments: it is a whole server.
  const worker = workerRole();
  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    if (worker === null && wantsCluster(settings)) return await runPrimary(settings);
    running = await startServer(settings, worker);
  } catch (error) {
    fail(`serve: ${(error as Error).message}`);
    return error instanceof ConfigError ? USAGE_ERROR : FAILED;
  }
  // startServer has logged "latchkey listening on …". A worker tells the primary on the next
  // turn, once the log has handed this turn's lines to standard output: the primary's own line
  // then follows every worker's.
  const { url } = running;
  if (worker !== null) setImmediate(() => reportReady(url));
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await running.close();
  return 0;
}

process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
  fail(error instanceof Error ? error.message : String(error));
  return FAILED;
});
leaveCluster();
