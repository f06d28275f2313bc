import type { SessionRecord } from '../../index.js';
import { type Command, findUser, usage } from '../command.js';
import { Failure } from '../errors.js';
import { iso, print, printJsonLines, printTable } from '../print.js';

/** `latchkey sessions …`: live sessions. */
export const SESSION_COMMANDS: Readonly<Record<string, Command>> = {
  'sessions list': {
    usage: usage(
      'sessions list [--user NAME] [--json]',
      'Lists live sessions, of one user or of everyone.',
      [
        ['--user NAME', "only this user's sessions"],
        ['--json', 'one JSON object per line'],
      ],
    ),
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
    usage: usage(
      'sessions revoke <id>',
      'Ends one session (ids are shown by "latchkey sessions list").',
    ),
    args: ['id'],
    async run({ auth, args }) {
      if (!(await auth.revoke(args[0] as string))) {
        throw new Failure(`no session with id ${args[0]}`);
      }
      print('revoked 1 session');
    },
  },
  'sessions revoke-user': {
    usage: usage('sessions revoke-user <name>', "Ends all of a user's sessions."),
    args: ['name'],
    async run({ auth, args }) {
      const user = await findUser(auth, args[0]);
      const count = await auth.revokeAllForUser(user.id);
      print(`revoked ${count} session${count === 1 ? '' : 's'} of ${user.username}`);
    },
  },
};
