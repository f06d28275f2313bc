/**
 * latchkey with accounts (MemoryStore) and a real argon2id POST /login, for the login storm.
 * Hashing goes through latchkey's credentials module and its pool sized to the machine.
 */
import { createServer } from 'node:http';
import { noCounter } from '../counting.mjs';

const { Latchkey, MemoryStore } = await import('../../dist/index.js');
const { authenticate } = await import('../../dist/http/node.js');

export const USERNAME = 'bench';
export const PASSWORD = 'correct horse battery staple';

export async function start() {
  const store = new MemoryStore({ maxSessions: 1_000_000 });
  const latchkey = new Latchkey({ store, users: store });
  await latchkey.createUser(USERNAME, PASSWORD);
  const server = createServer(async (req, res) => {
    if (req.method === 'POST' && req.url === '/login') {
      const credentials = JSON.parse((await readBody(req)) || '{}');
      const result = await latchkey.login(credentials, { cookie: req.headers.cookie ?? null });
      if (!result.ok) return res.writeHead(401).end();
      return res.writeHead(204, { 'set-cookie': [...result.setCookie] }).end();
    }
    const auth = await authenticate(latchkey, req, res);
    if (!auth) return;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(auth.session.userId);
  });
  return { server, counter: noCounter };
}

/** @param {import('node:http').IncomingMessage} req */
async function readBody(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}
