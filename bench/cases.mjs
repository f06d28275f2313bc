/**
 * The rows of the table, in the order printed. `needs` names the services a case cannot run
 * without; a case whose module is not built yet skips itself with the reason. `floor` names the
 * case that bounds this one (the same answer with only the unavoidable work, see
 * servers/floor.mjs): the table prints each row's ratio to it, measured in the same round.
 *
 * A new row is one entry here (and, for a new kind of server, one module in servers/ exporting
 * `start(options)`; a new latchkey store, one `case` in stores.mjs `createStore`). A `serve` case
 * is the real `latchkey serve` with those arguments, loaded on `GET /api/me` (cli-server.mjs).
 * @typedef {{ name: string, module?: string, serve?: string[], options?: object, needs?: ('redis' | 'postgres' | 'memcached')[], floor?: string }} BenchCase
 */

export const MAP_FLOOR = 'floor: Map lookup';
export const REDIS_FLOOR = 'floor: node-redis HGETALL';
export const POSTGRES_FLOOR = 'floor: pg prepared SELECT';
export const SERVE = 'latchkey serve: GET /api/me, SQLite, access log on';
export const SERVE_LOG_OFF = 'latchkey serve, access log off (--log-level warn)';
export const SERVE_WORKERS = 'latchkey serve --workers 2';
const EXPRESS_ALONE = 'express 5 alone (no session)';
const FASTIFY_ALONE = 'fastify 5 alone (no session)';

/**
 * The rows measured against their floors, with the share of the floor each must reach (issue 14):
 * in req/s from the same rounds, and in instructions per request (`--instructions`).
 * @type {[name: string, min: number][]}
 */
export const FLOOR_TARGETS = [
  ['latchkey memory', 0.9],
  ['latchkey SQLite', 0.9],
  ['latchkey Redis', 0.9],
  ['latchkey Redis + cache', 0.85],
  ['latchkey PostgreSQL', 0.9],
  ['latchkey PostgreSQL + cache', 0.85],
];

/** @type {BenchCase[]} */
export const CASES = [
  { name: 'bare node:http (ceiling)', module: 'bare' },
  { name: MAP_FLOOR, module: 'floor', options: { lookup: 'map' } },
  { name: REDIS_FLOOR, module: 'floor', options: { lookup: 'redis' }, needs: ['redis'] },
  { name: POSTGRES_FLOOR, module: 'floor', options: { lookup: 'postgres' }, needs: ['postgres'] },
  { name: 'latchkey memory', module: 'latchkey', options: { store: 'memory' }, floor: MAP_FLOOR },
  { name: 'latchkey SQLite', module: 'latchkey', options: { store: 'sqlite' }, floor: MAP_FLOOR },
  {
    name: 'latchkey Redis',
    module: 'latchkey',
    options: { store: 'redis' },
    needs: ['redis'],
    floor: REDIS_FLOOR,
  },
  {
    name: 'latchkey Redis + cache',
    module: 'latchkey',
    options: { store: 'redis-cache' },
    needs: ['redis'],
    floor: MAP_FLOOR,
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
    floor: POSTGRES_FLOOR,
  },
  {
    name: 'latchkey PostgreSQL + cache',
    module: 'latchkey',
    options: { store: 'postgres-cache' },
    needs: ['postgres'],
    floor: MAP_FLOOR,
  },
  { name: EXPRESS_ALONE, module: 'express', options: { store: 'none' } },
  {
    name: 'latchkey/express adapter, memory',
    module: 'latchkey-express',
    options: { store: 'memory' },
    floor: EXPRESS_ALONE,
  },
  { name: 'express 5 + express-session (memory)', module: 'express', options: { store: 'memory' } },
  {
    name: 'express 5 + express-session + connect-redis',
    module: 'express',
    options: { store: 'redis' },
    needs: ['redis'],
  },
  { name: FASTIFY_ALONE, module: 'fastify', options: { session: false } },
  {
    name: 'latchkey/fastify adapter, memory',
    module: 'latchkey-fastify',
    options: { store: 'memory' },
    floor: FASTIFY_ALONE,
  },
  { name: 'fastify 5 + @fastify/session', module: 'fastify' },
  // The server itself, on its default SQLite file: as shipped (access line per request), with the
  // access log off, and on both cores (the load generator shares them).
  { name: SERVE, serve: [] },
  { name: SERVE_LOG_OFF, serve: ['--log-level', 'warn'] },
  { name: SERVE_WORKERS, serve: ['--workers', '2'] },
];
