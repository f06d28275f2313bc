/**
 * One rung of `bench/ladder.mjs`: node:http doing the latchkey row's work up to `step`, and
 * answering like it (200, `content-type: text/plain`, the user id). Each step adds one layer:
 * - `floor`: cookie parse and `Map.get` of the token (the Map floor);
 * - `hash`: the same, keyed by the token's SHA-256 (the store key);
 * - `promise`: the same answer given through a promise, as every latchkey API gives it (one
 *   microtask turn before the response is written);
 * - `client` (Redis and PostgreSQL only): the raw client's one read instead of the Map, as the
 *   row's floor does it (node-redis `HGETALL`, `pg` prepared `SELECT`);
 * - `store`: `store.get` of that key instead of the Map (awaited: the store API is async);
 * - `validate`: `Sessions.validate(token)` (token shape, expiry, sliding refresh);
 * - `authenticate`: `Latchkey.authenticate` of the request (cookie read, denials);
 * - `adapter`: `latchkey/node`'s `authenticate(latchkey, req, res)`: the latchkey row itself.
 */
import { createServer } from 'node:http';
import { noCounter } from '../counting.mjs';
import { createStore } from '../stores.mjs';
import { lookupFor, tokenIn } from './floor.mjs';

const { Latchkey, Sessions } = await import('../../dist/index.js');
const { authenticate, requestInfo } = await import('../../dist/http/node.js');
const { sessionIdOf } = await import('../../dist/core/token.js');

/** The ladder's steps for `store`: the raw client's rung only where the row has a client floor. */
export function stepsFor(/** @type {string} */ store) {
  const client = store === 'redis' || store === 'postgres' ? ['client'] : [];
  return ['floor', 'hash', 'promise', ...client, 'store', 'validate', 'authenticate', 'adapter'];
}

/** @param {{ step: string, store?: Parameters<typeof createStore>[0] }} options */
export async function start(options) {
  const kind = options.store ?? 'memory';
  if (!stepsFor(kind).includes(options.step)) throw new Error(`no ladder step ${options.step}`);
  const store = await createStore(kind);
  const latchkey = new Latchkey({ store });
  const sessions = new Sessions({ store });
  const { setCookie } = await latchkey.startSession('user-42', { user: { name: 'Ada' } });
  const [cookieName, token] = setCookie[0].split(';')[0].split('=');
  const prefix = `${cookieName}=`;
  const byToken = new Map([[token, 'user-42']]);
  const byId = new Map([[sessionIdOf(token), 'user-42']]);
  const client =
    options.step === 'client'
      ? await lookupFor(/** @type {'redis' | 'postgres'} */ (kind), token)
      : null;
  /** @type {Record<string, (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => Promise<string | null> | string | null>} */
  const steps = {
    floor: (req) => byToken.get(tokenIn(req.headers.cookie, prefix) ?? '') ?? null,
    hash: (req) => byId.get(sessionIdOf(tokenIn(req.headers.cookie, prefix) ?? '')) ?? null,
    promise: async (req) =>
      byId.get(sessionIdOf(tokenIn(req.headers.cookie, prefix) ?? '')) ?? null,
    client: (req) => client?.find(tokenIn(req.headers.cookie, prefix) ?? '') ?? null,
    store: async (req) =>
      (await store.get(sessionIdOf(tokenIn(req.headers.cookie, prefix) ?? '')))?.userId ?? null,
    validate: async (req) =>
      (await sessions.validate(tokenIn(req.headers.cookie, prefix) ?? '')).session?.userId ?? null,
    authenticate: async (req) => {
      const result = await latchkey.authenticate(requestInfo(req));
      return result.ok ? result.session.userId : null;
    },
    adapter: async (req, res) => (await authenticate(latchkey, req, res))?.session.userId ?? null,
  };
  const find = steps[options.step];
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/login') {
      res.writeHead(204, { 'set-cookie': [...setCookie] }).end();
      return;
    }
    const found = find(req, res);
    if (found instanceof Promise) found.then((userId) => answer(res, userId));
    else answer(res, found);
  });
  return {
    server,
    counter: noCounter,
    close: async () => {
      await client?.close();
      await store.close();
    },
  };
}

/** @param {import('node:http').ServerResponse} res @param {string | null} userId */
function answer(res, userId) {
  if (res.headersSent) return;
  if (userId === null) res.writeHead(401).end();
  else res.writeHead(200, { 'content-type': 'text/plain' }).end(userId);
}
