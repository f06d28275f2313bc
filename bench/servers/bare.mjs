/** The ceiling: node:http answering the user id with no session at all. */
import { createServer } from 'node:http';
import { noCounter } from '../counting.mjs';

export async function start() {
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/login') {
      // Same cookie size as latchkey's, so the request bytes match; the server never reads it.
      res.writeHead(204, { 'set-cookie': `bare=${'x'.repeat(43)}` }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('user-42');
  });
  return { server, counter: noCounter };
}
