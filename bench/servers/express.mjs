/**
 * express 5 + express-session, on its MemoryStore or connect-redis, with counted store calls;
 * `store: 'none'` is express alone (no session at all): the framework's own ceiling.
 */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import { countingProxy, noCounter } from '../counting.mjs';
import { REDIS_URL } from '../stores.mjs';

const STORE_METHODS = ['get', 'set', 'touch', 'destroy'];
const WRITE_METHODS = ['set', 'touch', 'destroy'];

/** @param {{ store: 'memory' | 'redis' | 'none' }} options */
export async function start(options) {
  if (options.store === 'none') return bare();
  let real;
  /** @type {(() => Promise<unknown>) | undefined} */
  let close;
  if (options.store === 'redis') {
    const { createClient } = await import('redis');
    const { RedisStore } = await import('connect-redis');
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    real = new RedisStore({ client, prefix: `bench-sess:${process.pid}:` });
    close = () => client.quit();
  } else {
    real = new session.MemoryStore();
  }
  const { store, counter } = countingProxy(real, STORE_METHODS, WRITE_METHODS);
  const app = express();
  // The settings the express-session README recommends: no save unless modified.
  app.use(session({ store, secret: 'bench-secret', resave: false, saveUninitialized: false }));
  app.post('/login', (req, res) => {
    req.session.userId = 'user-42';
    res.status(204).end();
  });
  app.get('/me', (req, res) => {
    if (!req.session.userId) return res.status(401).end();
    res.type('text/plain').send(req.session.userId);
  });
  return { server: createServer(app), counter, close };
}

/** express answering the user id with no session middleware (the cookie is never read). */
function bare() {
  const app = express();
  app.post('/login', (_req, res) => {
    res
      .append('Set-Cookie', `bare=${'x'.repeat(43)}`)
      .status(204)
      .end();
  });
  app.get('/me', (_req, res) => {
    res.type('text/plain').send('user-42');
  });
  return { server: createServer(app), counter: noCounter };
}
