/**
 * The rows of the table, in the order printed. `needs` names the services a case cannot run
 * without; a case whose module is not built yet skips itself with the reason.
 * @typedef {{ name: string, module: string, options?: object, needs?: ('redis' | 'postgres' | 'memcached')[] }} BenchCase
 */

/** @type {BenchCase[]} */
export const CASES = [
  { name: 'bare node:http (ceiling)', module: 'bare' },
  { name: 'latchkey memory', module: 'latchkey', options: { store: 'memory' } },
  { name: 'latchkey SQLite', module: 'latchkey', options: { store: 'sqlite' } },
  { name: 'latchkey Redis', module: 'latchkey', options: { store: 'redis' }, needs: ['redis'] },
  {
    name: 'latchkey Redis + cache',
    module: 'latchkey',
    options: { store: 'redis-cache' },
    needs: ['redis'],
  },
  {
    name: 'latchkey Memcached',
    module: 'latchkey',
    options: { store: 'memcached' },
    needs: ['memcached'],
  },
  {
    name: 'latchkey PostgreSQL',
    module: 'latchkey',
    options: { store: 'postgres' },
    needs: ['postgres'],
  },
  {
    name: 'latchkey PostgreSQL + cache',
    module: 'latchkey',
    options: { store: 'postgres-cache' },
    needs: ['postgres'],
  },
  { name: 'express 5 alone (no session)', module: 'express', options: { store: 'none' } },
  {
    name: 'latchkey/express adapter, memory',
    module: 'latchkey-express',
    options: { store: 'memory' },
  },
  { name: 'express 5 + express-session (memory)', module: 'express', options: { store: 'memory' } },
  {
    name: 'express 5 + express-session + connect-redis',
    module: 'express',
    options: { store: 'redis' },
    needs: ['redis'],
  },
  { name: 'fastify 5 alone (no session)', module: 'fastify', options: { session: false } },
  {
    name: 'latchkey/fastify adapter, memory',
    module: 'latchkey-fastify',
    options: { store: 'memory' },
  },
  { name: 'fastify 5 + @fastify/session', module: 'fastify' },
];
