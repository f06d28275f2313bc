import { hasCapability } from '../../core/capabilities.js';
import { sweepOnce } from '../../server/sweep.js';
import { type Command, usage } from '../command.js';
import { fail, print } from '../print.js';

/** `latchkey sweep` and `latchkey migrate`: upkeep of the store. */
export const MAINTENANCE_COMMANDS: Readonly<Record<string, Command>> = {
  sweep: {
    usage: usage(
      'sweep',
      `Deletes expired sessions, login-attempt windows and remember-me tokens, as a running server
does every --sweep-interval, and prints the number of sessions deleted.`,
    ),
    args: [],
    async run({ auth, stores }) {
      const counts = await sweepOnce(auth, stores);
      if (counts === null) fail('another process is sweeping this store; nothing was deleted');
      print(String(counts?.sessions ?? 0));
    },
  },
  migrate: {
    usage: usage(
      'migrate',
      `Applies pending schema migrations to a PostgreSQL store (each once, under an advisory lock,
so several processes may run it at once) and prints the schema version. SQLite and Redis
stores need none.`,
    ),
    args: [],
    async run({ stores }) {
      // Opening a PostgreSQL store has already migrated it; this reports what that did, for the
      // sessions store and the users store (each once).
      const migrating = stores.all.filter((store) => hasCapability(store, 'migrations'));
      if (migrating.length === 0) {
        print('nothing to migrate: only PostgreSQL stores have migrations');
        return;
      }
      for (const store of migrating) {
        if (!hasCapability(store, 'migrations')) continue;
        const { applied, version } = await store.migrations();
        print(
          applied.length === 0
            ? `schema up to date (version ${version})`
            : `applied migration${applied.length === 1 ? '' : 's'} ${applied.join(', ')}; schema at version ${version}`,
        );
      }
    },
  },
};
