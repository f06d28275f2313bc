#!/usr/bin/env node
import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  ConfigError,
  CredentialError,
  Latchkey,
  type SessionRecord,
  type UserInfo,
} from '../index.js';
import {
  CONFIG_KEYS,
  type ConfigSource,
  describeConfig,
  envOf,
  flagOf,
  readServeConfig,
  resolveServeConfig,
  SERVE_USAGE,
} from '../server/config.js';
import { startServer } from '../server/serve.js';
import { type OpenedStore, openStore } from '../server/store.js';
import type { MigrationReport } from '../stores/postgres.js';
import { Failure, UsageError } from './errors.js';
import { readPassword } from './password.js';

/** Exit codes: 0 done, 1 the operation failed, 2 the command line is wrong. */
const FAILED = 1;
const USAGE_ERROR = 2;

const DB_HELP = `  --db FILE          SQLite file (default ./latchkey.db, or LATCHKEY_DB)
  --store URL        redis://… or postgres://… instead of SQLite (or LATCHKEY_STORE)`;
const HELP = '  -h, --help         show this help';

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
  sessions list [--user NAME]    list live sessions
  sessions revoke <id>           end one session
  sessions revoke-user <name>    end all of a user's sessions
  sweep                          delete expired sessions and print how many
  migrate                        bring a PostgreSQL store's schema up to date

Every command takes --db FILE (default ./latchkey.db, or LATCHKEY_DB), --store URL
(redis://… or postgres://…, or LATCHKEY_STORE) and --help.
Changes take effect on a running server that uses the same store at its next request.`;

interface Command {
  readonly usage: string;
  readonly args: readonly string[];
  readonly options?: ParseArgsConfig['options'];
  run(input: CommandInput): Promise<void>;
}

interface CommandInput {
  readonly auth: Latchkey;
  readonly store: OpenedStore;
  readonly args: readonly string[];
  readonly values: Record<string, string | boolean | undefined>;
}

/** A session id (SHA-256, base64url) that starts with "-", so parseArgs would read it as flags. */
const SESSION_ID_LIKE = /^-[A-Za-z0-9_-]{42}$/;

const PASSWORD_OPTIONS = { 'password-stdin': { type: 'boolean' } } as const;
const PASSWORD_HELP = `  --password-stdin   read the password from standard input (otherwise prompt without echo)`;

const COMMANDS: Record<string, Command> = {
  'user add': {
    usage: `Usage: latchkey user add <name> [--password-stdin] [--db FILE]\n\nCreates an account.\n\n${PASSWORD_HELP}\n${DB_HELP}\n${HELP}`,
    args: ['name'],
    options: PASSWORD_OPTIONS,
    async run({ auth, args, values }) {
      const password = await readPassword(values['password-stdin'] === true, { confirm: true });
      const user = await auth.createUser(args[0], password);
      print(`created ${user.username} (${user.id})`);
    },
  },
  'user list': {
    usage: `Usage: latchkey user list [--json] [--db FILE]\n\nLists accounts, oldest first.\n\n  --json             one JSON object per line\n${DB_HELP}\n${HELP}`,
    args: [],
    options: { json: { type: 'boolean' } },
    async run({ auth, values }) {
      const users = await auth.listUsers();
      if (values.json) return printJsonLines(users);
      printTable(
        ['USERNAME', 'ID', 'CREATED', 'STATUS'],
        users.map((user) => [
          user.username,
          user.id,
          iso(user.createdAt),
          user.disabled ? 'disabled' : 'active',
        ]),
      );
    },
  },
  'user remove': {
    usage: `Usage: latchkey user remove <name> [--db FILE]\n\nDeletes an account and ends all its sessions.\n\n${DB_HELP}\n${HELP}`,
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      await auth.deleteUser(user.id);
      print(`removed ${user.username}`);
    },
  },
  'user passwd': {
    usage: `Usage: latchkey user passwd <name> [--password-stdin] [--db FILE]\n\nSets a new password and ends all of the user's sessions.\n\n${PASSWORD_HELP}\n${DB_HELP}\n${HELP}`,
    args: ['name'],
    options: PASSWORD_OPTIONS,
    async run({ auth, args, values }) {
      const user = await findUser(auth, args[0]);
      const password = await readPassword(values['password-stdin'] === true, { confirm: true });
      await auth.changePassword(user.id, password);
      print(`password changed for ${user.username}; their sessions were ended`);
    },
  },
  'user disable': {
    usage: `Usage: latchkey user disable <name> [--db FILE]\n\nBlocks logins and ends all of the user's sessions.\n\n${DB_HELP}\n${HELP}`,
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      await auth.disableUser(user.id);
      print(`disabled ${user.username}; their sessions were ended`);
    },
  },
  'user enable': {
    usage: `Usage: latchkey user enable <name> [--db FILE]\n\nAllows a disabled user to log in again.\n\n${DB_HELP}\n${HELP}`,
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      await auth.enableUser(user.id);
      print(`enabled ${user.username}`);
    },
  },
  'sessions list': {
    usage: `Usage: latchkey sessions list [--user NAME] [--json] [--db FILE]\n\nLists live sessions, of one user or of everyone.\n\n  --user NAME        only this user's sessions\n  --json             one JSON object per line\n${DB_HELP}\n${HELP}`,
    args: [],
    options: { user: { type: 'string' }, json: { type: 'boolean' } },
    async run({ auth, values }) {
      const users =
        typeof values.user === 'string'
          ? [await findUser(auth, values.user)]
          : await auth.listUsers();
      const sessions: { username: string; session: SessionRecord }[] = [];
      for (const user of users) {
        for (const session of await auth.listSessions(user.id)) {
          sessions.push({ username: user.username, session });
        }
      }
      if (values.json) {
        return printJsonLines(sessions.map(({ username, session }) => ({ username, ...session })));
      }
      printTable(
        ['ID', 'USER', 'CREATED', 'LAST SEEN', 'IP', 'USER AGENT'],
        sessions.map(({ username, session }) => [
          session.id,
          username,
          iso(session.createdAt),
          iso(session.lastSeenAt),
          session.ip ?? '-',
          session.userAgent ?? '-',
        ]),
      );
    },
  },
  'sessions revoke': {
    usage: `Usage: latchkey sessions revoke <id> [--db FILE]\n\nEnds one session (ids are shown by "latchkey sessions list").\n\n${DB_HELP}\n${HELP}`,
    args: ['id'],
    async run({ auth, args }) {
      if (!(await auth.revoke(args[0] as string)))
        throw new Failure(`no session with id ${args[0]}`);
      print('revoked 1 session');
    },
  },
  'sessions revoke-user': {
    usage: `Usage: latchkey sessions revoke-user <name> [--db FILE]\n\nEnds all of a user's sessions.\n\n${DB_HELP}\n${HELP}`,
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      const count = await auth.revokeAllForUser(user.id);
      print(`revoked ${count} session${count === 1 ? '' : 's'} of ${user.username}`);
    },
  },
  sweep: {
    usage: `Usage: latchkey sweep [--db FILE]\n\nDeletes expired sessions, login-attempt windows and remember-me tokens, and prints the\nnumber of sessions deleted.\n\n${DB_HELP}\n${HELP}`,
    args: [],
    async run({ auth, store }) {
      const sessions = await auth.deleteExpired();
      await store.deleteExpiredAttempts(Date.now());
      await store.deleteExpiredRemember(Date.now());
      print(String(sessions));
    },
  },
  migrate: {
    usage: `Usage: latchkey migrate [--store URL]\n\nApplies pending schema migrations to a PostgreSQL store (each once, under an advisory lock,\nso several processes may run it at once) and prints the schema version. SQLite and Redis\nstores need none.\n\n${DB_HELP}\n${HELP}`,
    args: [],
    async run({ store }) {
      // Opening a PostgreSQL store has already migrated it; this reports what that did.
      if (!hasMigrations(store)) {
        print('nothing to migrate: only PostgreSQL stores have migrations');
        return;
      }
      const { applied, version } = await store.migrations();
      print(
        applied.length === 0
          ? `schema up to date (version ${version})`
          : `applied migration${applied.length === 1 ? '' : 's'} ${applied.join(', ')}; schema at version ${version}`,
      );
    },
  },
};

function hasMigrations(
  store: OpenedStore,
): store is OpenedStore & { migrations(): Promise<MigrationReport> } {
  return typeof (store as { migrations?: unknown }).migrations === 'function';
}

async function main(argv: readonly string[]): Promise<number> {
  const [first, second] = argv;
  if (first === 'serve') return serve(argv.slice(1));
  if (
    first === 'config' &&
    (second === 'check' || second === undefined || second.startsWith('-'))
  ) {
    if (second !== 'check') {
      if (second === '--help' || second === '-h') {
        print(CONFIG_USAGE);
        return 0;
      }
      fail(`missing command: latchkey config check\n\n${CONFIG_USAGE}`);
      return USAGE_ERROR;
    }
    return configCheck(argv.slice(2));
  }
  const name = COMMANDS[`${first} ${second}`] ? `${first} ${second}` : (first ?? '');
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
        db: { type: 'string' },
        store: { type: 'string' },
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

  let store: OpenedStore;
  try {
    const url = storeUrl(values.store);
    // With the cache on, a PostgreSQL write waits until every server's cache has dropped the
    // session, so a revocation from the CLI is as immediate as one from a server.
    store = await openStore({ db: dbPath(values.db), store: url, cache: url !== undefined });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    fail(error.message);
    return FAILED;
  }
  try {
    await command.run({ auth: new Latchkey({ store, users: store }), store, args, values });
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
    await store.close();
  }
}

async function serve(argv: readonly string[]): Promise<number> {
  let config: ReturnType<typeof readServeConfig>;
  try {
    config = readServeConfig(argv, process.env);
  } catch (error) {
    fail(`serve: ${(error as Error).message} (see latchkey serve --help)`);
    return USAGE_ERROR;
  }
  if (config === null) {
    print(SERVE_USAGE);
    return 0;
  }
  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    running = await startServer(config);
  } catch (error) {
    fail(`serve: ${(error as Error).message}`);
    return error instanceof ConfigError ? USAGE_ERROR : FAILED;
  }
  // startServer has logged "latchkey listening on …".
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await running.close();
  return 0;
}

const CONFIG_USAGE = `Usage: latchkey config check [--config FILE] [--json] [serve options]

Reads the configuration exactly as "latchkey serve" would (flags, then LATCHKEY_* variables, then
the --config file, then defaults), prints every setting with where it came from, and exits 0; a
bad setting exits 2 with the key and the reason. Secrets are masked: a store URL's password is
shown as ***, and the secret file is named, never read. The store is not contacted.

  --json             one JSON object of settings instead of a table
  -h, --help         show this help

Serve options: see latchkey serve --help.`;

async function configCheck(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json');
  const rest = argv.filter((arg) => arg !== '--json');
  if (rest.includes('--help') || rest.includes('-h')) {
    print(CONFIG_USAGE);
    return 0;
  }
  let resolved: ReturnType<typeof resolveServeConfig>;
  try {
    resolved = resolveServeConfig(rest, process.env);
  } catch (error) {
    fail(`config: ${(error as Error).message}`);
    return USAGE_ERROR;
  }
  if (resolved === null) return 0;
  const shown = describeConfig(resolved.config);
  if (json) {
    print(JSON.stringify(shown, null, 2));
    return 0;
  }
  const source = (key: (typeof CONFIG_KEYS)[number], from: ConfigSource): string => {
    if (from.kind === 'flag') return flagOf(key);
    if (from.kind === 'env') return envOf(key);
    if (from.kind === 'file') return from.file;
    return 'default';
  };
  printTable(
    ['KEY', 'VALUE', 'FROM'],
    CONFIG_KEYS.map((key) => {
      const value = shown[key];
      const text =
        value === null ? '-' : Array.isArray(value) ? value.join(',') || '-' : String(value);
      return [key, text, source(key, resolved.sources[key])];
    }),
  );
  return 0;
}

async function findUser(auth: Latchkey, name: string | undefined): Promise<UserInfo> {
  const user = await auth.findUser(name ?? '');
  if (!user) throw new Failure(`no user named "${name}"`);
  return user;
}

function dbPath(flag: string | boolean | undefined): string {
  return typeof flag === 'string' ? flag : (process.env.LATCHKEY_DB ?? './latchkey.db');
}

function storeUrl(flag: string | boolean | undefined): string | undefined {
  return (typeof flag === 'string' ? flag : process.env.LATCHKEY_STORE) || undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  for (const row of [header, ...rows]) {
    print(
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    );
  }
}

function printJsonLines(values: readonly object[]): void {
  for (const value of values) print(JSON.stringify(value));
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function fail(text: string): void {
  process.stderr.write(`latchkey: ${text}\n`);
}

process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
  fail(error instanceof Error ? error.message : String(error));
  return FAILED;
});
