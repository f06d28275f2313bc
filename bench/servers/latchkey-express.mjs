/** latchkey's express adapter: `authenticate(latchkey)` + `requireAuth()`, then the user id. */
import { createServer } from 'node:http';
import express from 'express';
import { countingProxy } from '../counting.mjs';
import { createStore, importBuilt } from '../stores.mjs';
import { SESSION_METHODS, WRITE_METHODS } from './latchkey.mjs';

/** @param {{ store: Parameters<typeof createStore>[0] }} options */
export async function start(options) {
  const authenticate = await importBuilt('http/express.js', 'authenticate');
  const requireAuth = await importBuilt('http/express.js', 'requireAuth');
  const { Latchkey } = await import('../../dist/index.js');
  const real = await createStore(options.store);
  const { store, counter } = countingProxy(real, SESSION_METHODS, WRITE_METHODS);
  const latchkey = new Latchkey({ store });
  const app = express();
  app.disable('x-powered-by');
  app.post('/login', async (_req, res) => {
    const { setCookie } = await latchkey.startSession('user-42', { user: { name: 'Ada' } });
    res
      .append('Set-Cookie', [...setCookie])
      .status(204)
      .end();
  });
  app.use(authenticate(latchkey));
  app.get('/me', requireAuth(), (req, res) => {
    res.type('text/plain').send(req.auth.session.userId);
  });
  return { server: createServer(app), counter, close: () => real.close() };
}
