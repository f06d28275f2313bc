import type { Latchkey, SecondFactors } from '../../index.js';
import { type Command, findUser, usage } from '../command.js';
import { readPassword } from '../password.js';
import { iso, print, printJsonLines, printTable } from '../print.js';

const PASSWORD_OPTIONS = { 'password-stdin': { type: 'boolean' } } as const;
const PASSWORD_HELP = [
  '--password-stdin',
  'read the password from standard input (otherwise prompt without echo)',
] as const;
const JSON_HELP = ['--json', 'one JSON object per line'] as const;

/** `latchkey user …`: accounts. */
export const USER_COMMANDS: Readonly<Record<string, Command>> = {
  'user add': {
    usage: usage('user add <name> [--password-stdin]', 'Creates an account.', [PASSWORD_HELP]),
    args: ['name'],
    options: PASSWORD_OPTIONS,
    async run({ auth, args, values }) {
      const password = await readPassword(values['password-stdin'] === true, { confirm: true });
      const user = await auth.createUser(args[0], password);
      print(`created ${user.username} (${user.id})`);
    },
  },
  'user list': {
    usage: usage('user list [--json]', 'Lists accounts, oldest first.', [JSON_HELP]),
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
    usage: usage('user remove <name>', 'Deletes an account and ends all its sessions.'),
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      await auth.deleteUser(user.id);
      print(`removed ${user.username}`);
    },
  },
  'user passwd': {
    usage: usage(
      'user passwd <name> [--password-stdin]',
      "Sets a new password and ends all of the user's sessions.",
      [PASSWORD_HELP],
    ),
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
    usage: usage('user disable <name>', "Blocks logins and ends all of the user's sessions."),
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      await auth.disableUser(user.id);
      print(`disabled ${user.username}; their sessions were ended`);
    },
  },
  'user mfa list': {
    usage: usage(
      'user mfa list <name> [--json]',
      "Lists the user's second factors (TOTP, passkeys) and how many recovery codes are left.",
      [JSON_HELP],
    ),
    args: ['name'],
    options: { json: { type: 'boolean' } },
    async run({ auth, args, values }) {
      const user = await findUser(auth, args[0]);
      const status = await secondFactorsOf(auth).status(user.id);
      const factors = [...(status.totp ? [status.totp] : []), ...status.passkeys];
      if (values.json) {
        return printJsonLines([...factors, { kind: 'recovery', left: status.recoveryCodesLeft }]);
      }
      printTable(
        ['KIND', 'NAME', 'ID', 'ADDED', 'LAST USED'],
        [
          ...factors.map((factor) => [
            factor.kind,
            factor.name,
            factor.id,
            iso(factor.createdAt),
            factor.lastUsedAt === null ? 'never' : iso(factor.lastUsedAt),
          ]),
          ['recovery', `${status.recoveryCodesLeft} codes left`, '-', '-', '-'],
        ],
      );
    },
  },
  'user mfa reset': {
    usage: usage(
      'user mfa reset <name>',
      "Removes all of the user's second factors and recovery codes (an audit event on stderr): they log in with their password alone until they enrol again.",
    ),
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      const removed = await secondFactorsOf(auth).reset(user.id);
      print(`removed ${removed} second factors and recovery codes of ${user.username}`);
    },
  },
  'user enable': {
    usage: usage('user enable <name>', 'Allows a disabled user to log in again.'),
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      await auth.enableUser(user.id);
      print(`enabled ${user.username}`);
    },
  },
};

/** The CLI's engine always has second factors on (main.ts). */
function secondFactorsOf(auth: Latchkey): SecondFactors {
  if (!auth.secondFactors) throw new Error('the CLI engine has no second factors');
  return auth.secondFactors;
}
