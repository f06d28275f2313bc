/** latchkey's fastify plugin + `requireAuth` preHandler, then the user id. */
import Fastify from 'fastify';
import { countingProxy } from '../counting.mjs';
import { createStore, importBuilt } from '../stores.mjs';
import { SESSION_METHODS, WRITE_METHODS } from './latchkey.mjs';

/** @param {{ store: Parameters<typeof createStore>[0] }} options */
export async function start(options) {
  const latchkeyPlugin = await importBuilt('http/fastify.js', 'latchkeyPlugin');
  const requireAuth = await importBuilt('http/fastify.js', 'requireAuth');
  const { Latchkey } = await import('../../dist/index.js');
  const real = await createStore(options.store);
  const { store, counter } = countingProxy(real, SESSION_METHODS, WRITE_METHODS);
  const latchkey = new Latchkey({ store });
  const app = Fastify();
  await app.register(latchkeyPlugin, { latchkey });
  app.post('/login', async (_request, reply) => {
    const { setCookie } = await latchkey.startSession('user-42', { user: { name: 'Ada' } });
    reply
      .header('set-cookie', [...setCookie])
      .code(204)
      .send();
  });
  app.get('/me', { preHandler: requireAuth }, async (request, reply) => {
    reply.type('text/plain').send(request.auth?.session.userId);
  });
  await app.ready();
  return {
    server: app.server,
    counter,
    close: async () => {
      await app.close();
      await real.close();
    },
  };
}
