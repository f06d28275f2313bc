/** fastify 5 + @fastify/cookie + @fastify/session (defaults: rolling), with counted store calls. */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import Fastify from 'fastify';
import { countingProxy } from '../counting.mjs';

export async function start() {
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
