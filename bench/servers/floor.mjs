/**
 * A row's physical floor: node:http doing only the unavoidable work of validating a session and
 * giving the same answer as the latchkey row it bounds (200, `content-type: text/plain`, the
 * user id). The session is started through latchkey itself, so the cookie and the stored record
 * are the latchkey row's own; each request then parses the cookie and does ONE lookup:
 * - `map`: `Map.get` of the token (no hash, no decode: the in-process floor);
 * - `redis`: one node-redis `HGETALL` of the session's hash (RESP3, as the store connects);
 * - `postgres`: one named (prepared) `SELECT` with `pg` of the session's row.
 * The Redis and PostgreSQL floors hash the token (SHA-256), since the key is the token's hash.
 */
import { createServer } from 'node:http';
import { noCounter } from '../counting.mjs';
import { createStore, POSTGRES_URL, REDIS_PREFIX, REDIS_URL } from '../stores.mjs';

const { Latchkey } = await import('../../dist/index.js');
const { sessionIdOf } = await import('../../dist/core/token.js');

/** @param {{ lookup: 'map' | 'redis' | 'postgres' }} options */
export async function start(options) {
  const store = await createStore(
    options.lookup === 'map' ? 'memory' : /** @type {'redis' | 'postgres'} */ (options.lookup),
  );
  const latchkey = new Latchkey({ store });
  const { setCookie } = await latchkey.startSession('user-42', { user: { name: 'Ada' } });
  const [cookieName, token] = setCookie[0].split(';')[0].split('=');
  const { find, close } = await lookupFor(options.lookup, token);
  const prefix = `${cookieName}=`;
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/login') {
      res.writeHead(204, { 'set-cookie': [...setCookie] }).end();
      return;
    }
    const value = tokenIn(req.headers.cookie, prefix);
    const found = value === null ? null : find(value);
    // The Map floor answers in the same tick: no await where there is nothing to wait for.
    if (found instanceof Promise) found.then((userId) => answer(res, userId));
    else answer(res, found);
  });
  return {
    server,
    counter: noCounter,
    close: async () => {
      await close();
      await store.close();
    },
  };
}

/** @param {import('node:http').ServerResponse} res @param {string | null} userId */
function answer(res, userId) {
  if (userId === null) res.writeHead(401).end();
  else res.writeHead(200, { 'content-type': 'text/plain' }).end(userId);
}

/**
 * The value of the cookie `<name>=` (`prefix`) in a Cookie header, found without splitting it.
 * @param {string | undefined} header
 * @param {string} prefix
 */
export function tokenIn(header, prefix) {
  if (!header) return null;
  let at = header.startsWith(prefix) ? 0 : header.indexOf(`; ${prefix}`);
  if (at < 0) return null;
  if (at > 0 || !header.startsWith(prefix)) at += 2;
  const start = at + prefix.length;
  const end = header.indexOf(';', start);
  return header.slice(start, end < 0 ? undefined : end);
}

/**
 * @param {'map' | 'redis' | 'postgres'} lookup
 * @param {string} token the one session's token
 * @returns {Promise<{ find(token: string): Promise<string | null> | string | null, close(): Promise<void> }>}
 */
export async function lookupFor(lookup, token) {
  if (lookup === 'map') {
    const sessions = new Map([[token, { userId: 'user-42', user: { name: 'Ada' } }]]);
    return { find: (value) => sessions.get(value)?.userId ?? null, close: async () => {} };
  }
  if (lookup === 'redis') {
    const { createClient } = await import('redis');
    const client = createClient({ url: REDIS_URL, RESP: 3 });
    await client.connect();
    const prefix = REDIS_PREFIX;
    return {
      async find(value) {
        const fields = await client.hGetAll(`${prefix}s:${sessionIdOf(value)}`);
        // `u`: the compact record's user id (src/stores/redis/records.ts).
        return fields.u ?? null;
      },
      close: async () => void (await client.close()),
    };
  }
  const { default: pg } = await import('pg');
  const { SESSION_COLUMNS } = await import('../../dist/stores/sql/rows.js');
  // pg's default pool size, as the store's own pool; the store's columns, in its order.
  const pool = new pg.Pool({ connectionString: POSTGRES_URL });
  const text = `SELECT ${SESSION_COLUMNS} FROM "latchkey_bench".latchkey_sessions WHERE id = $1`;
  return {
    async find(value) {
      const result = await pool.query({
        name: 'floor-get',
        text,
        values: [sessionIdOf(value)],
        rowMode: 'array',
      });
      const row = result.rows[0];
      return row ? String(row[1]) : null;
    },
    close: () => pool.end(),
  };
}
