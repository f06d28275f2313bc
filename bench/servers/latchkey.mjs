/** latchkey on node:http: `authenticate` then the session's user id, with a counted store. */
import { createServer } from 'node:http';
import { countingProxy, countQueries } from '../counting.mjs';
import { createStore } from '../stores.mjs';

const { Latchkey } = await import('../../dist/index.js');
const { authenticate } = await import('../../dist/http/node.js');

export const SESSION_METHODS = [
  'create',
  'get',
  'touch',
  'updateData',
  'delete',
  'listByUser',
  'deleteByUser',
  'deleteExpired',
];
export const WRITE_METHODS = [
  'create',
  'touch',
  'updateData',
  'delete',
  'deleteByUser',
  'deleteExpired',
];

/** @param {{ store: Parameters<typeof createStore>[0] }} options */
export async function start(options) {
  const real = await createStore(options.store);
  const { store, counter: calls } = countingProxy(real, SESSION_METHODS, WRITE_METHODS);
  // PostgreSQL stores: the statements behind those calls too (0 on a cache hit).
  const queries = options.store.startsWith('postgres')
    ? countQueries(/** @type {any} */ (real).pool)
    : null;
  const counter = {
    ...calls,
    reset() {
      calls.reset();
      queries?.reset();
    },
    totals: () => ({ ...calls.totals(), queries: queries?.total() ?? null }),
  };
  const latchkey = new Latchkey({ store });
  const server = createServer(async (req, res) => {
    if (req.method === 'POST' && req.url === '/login') {
      const { setCookie } = await latchkey.startSession('user-42', { user: { name: 'Ada' } });
      res.writeHead(204, { 'set-cookie': [...setCookie] }).end();
      return;
    }
    const auth = await authenticate(latchkey, req, res);
    if (!auth) return;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(auth.session.userId);
  });
  return { server, counter, close: () => real.close() };
}
