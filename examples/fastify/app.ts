import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyRequest } from 'fastify';
import {
  type Duration,
  isSameOrigin,
  Latchkey,
  MemoryStore,
  type SessionStore,
  safeNextPath,
} from 'latchkey';
import { latchkeyPlugin, requireAuth } from 'latchkey/fastify';

// The snapshot latchkey keeps for its own accounts: `request.auth.user` is typed from here on.
declare global {
  interface LatchkeyRegister {
    user: { id: string; username: string };
  }
}

export const demoUser = { username: 'ada', password: 'correct horse battery staple' };

const LOGIN_PAGE = `<!doctype html><title>Sign in</title>
<form method="post"><input name="username"> <input name="password" type="password">
<button>Sign in</button></form>`;

export interface StartOptions {
  port?: number;
  idleTimeout?: Duration;
  /** Sessions live here; users always live in memory. */
  store?: SessionStore;
  /** Tests move time by hand instead of sleeping. */
  clock?: () => number;
}

export async function start({ port = 3000, idleTimeout = '30m', store, clock }: StartOptions = {}) {
  const users = new MemoryStore();
  // The throttle counts failed logins per account and per IP (here in memory, with the users).
  const latchkey = new Latchkey({
    store: store ?? users,
    users,
    throttle: { store: users },
    idleTimeout,
    clock,
  });
  await latchkey.createUser(demoUser.username, demoUser.password);

  const app = Fastify({ trustProxy: '127.0.0.1' }); // request.ip is the client's behind a local proxy
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );
  await app.register(latchkeyPlugin, { latchkey });

  app.get('/login', (_request, reply) => reply.type('text/html').send(LOGIN_PAGE));
  app.post<{ Body: Record<string, unknown>; Querystring: { next?: string } }>(
    '/login',
    async (request, reply) => {
      // Login CSRF: another site's form must not sign the browser in to an account it chose.
      if (!fromThisSite(request)) return reply.code(403).send({ error: 'cross_site' });
      const result = await reply.login(request.body ?? {});
      if (!result.ok && result.error === 'too_many_attempts') {
        reply.header('retry-after', String(result.retryAfterSeconds));
        return reply.code(429).send({ error: result.error });
      }
      if (!result.ok) return reply.code(401).send({ error: result.error });
      if (request.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
        return reply.redirect(safeNextPath(request.query.next) ?? '/dashboard', 303);
      }
      return { user: result.user };
    },
  );
  app.get('/dashboard', { preHandler: requireAuth }, (request, reply) =>
    reply.type('text/plain').send(`Hello, ${request.auth?.user.username}`),
  );
  app.get('/api/me', { preHandler: requireAuth }, (request) => ({ user: request.auth?.user }));
  app.post('/logout', async (request, reply) => {
    if (!fromThisSite(request)) return reply.code(403).send({ error: 'cross_site' });
    await reply.logout();
    return reply.redirect('/login', 303);
  });

  await app.listen({ port, host: '127.0.0.1' });
  const { port: bound } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${bound}`, latchkey, close: () => app.close() };
}

/** Whether an unsafe request comes from this site's own pages (Fetch Metadata, else Origin). */
function fromThisSite(request: FastifyRequest): boolean {
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === 'string' ? value : null;
  };
  const headers = {
    method: request.method,
    origin: header('origin'),
    referer: header('referer'),
    secFetchSite: header('sec-fetch-site'),
  };
  return isSameOrigin(headers, `${request.protocol}://${request.host}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await start();
  console.log(`fastify example on ${url} (${demoUser.username} / ${demoUser.password})`);
}
