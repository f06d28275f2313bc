/**
 * fastify 5 + @fastify/cookie + @fastify/session (defaults: rolling), with counted store calls;
 * `session: false` is fastify alone (no session at all): the framework's own ceiling.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import Fastify from 'fastify';
import { countingProxy, noCounter } from '../counting.mjs';

/** @param {{ session?: boolean }} options */
export async function start(options = {}) {
  if (options.session === false) return bare();
  const { store, counter } = countingProxy(
    new fastifySession.MemoryStore(),
    ['get', 'set', 'destroy'],
    ['set', 'destroy'],
  );
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    store,
    secret: 'a-bench-secret-that-is-at-least-32-characters',
    cookie: { secure: false },
    saveUninitialized: false,
  });
  app.post('/login', async (request, reply) => {
    request.session.set('userId', 'user-42');
    reply.code(204).send();
  });
  app.get('/me', async (request, reply) => {
    const userId = request.session.get('userId');
    if (!userId) return reply.code(401).send();
    reply.type('text/plain').send(userId);
  });
  await app.ready();
  return { server: app.server, counter, close: () => app.close() };
}

/** fastify answering the user id with no session plugin (the cookie is never read). */
async function bare() {
  const app = Fastify();
  app.post('/login', async (_request, reply) => {
    reply
      .header('set-cookie', `bare=${'x'.repeat(43)}`)
      .code(204)
      .send();
  });
  app.get('/me', async (_request, reply) => {
    reply.type('text/plain').send('user-42');
  });
  await app.ready();
  return { server: app.server, counter: noCounter, close: () => app.close() };
}
