import { fileURLToPath } from 'node:url';
import { type ServerType, serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, Hono } from 'hono';
import {
  type Duration,
  isSameOrigin,
  Latchkey,
  MemoryStore,
  type SessionStore,
  safeNextPath,
} from 'latchkey';
import { type AuthVariables, authenticate, login, logout, requireAuth } from 'latchkey/hono';

/** The snapshot latchkey keeps for its own accounts. */
type User = { id: string; username: string };

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

  const app = new Hono<{ Variables: AuthVariables<User> }>();
  app.use(authenticate<User>(latchkey, { ip: (c) => getConnInfo(c).remote.address }));

  app.get('/login', (c) => c.html(LOGIN_PAGE));
  app.post('/login', async (c) => {
    // Login CSRF: another site's form must not sign the browser in to an account it chose.
    if (!fromThisSite(c)) return c.json({ error: 'cross_site' }, 403);
    const form = c.req.header('content-type')?.startsWith('application/x-www-form-urlencoded');
    const credentials = form ? await c.req.parseBody() : await c.req.json().catch(() => ({}));
    const result = await login(c, credentials);
    if (!result.ok && result.error === 'too_many_attempts') {
      c.header('retry-after', String(result.retryAfterSeconds));
      return c.json({ error: result.error }, 429);
    }
    if (!result.ok) return c.json({ error: result.error }, 401);
    if (form) return c.redirect(safeNextPath(c.req.query('next')) ?? '/dashboard', 303);
    return c.json({ user: result.user });
  });
  app.get('/dashboard', requireAuth<User>(), (c) =>
    c.text(`Hello, ${c.get('auth').user.username}`),
  );
  app.get('/api/me', requireAuth<User>(), (c) => c.json({ user: c.get('auth').user }));
  app.post('/logout', async (c) => {
    if (!fromThisSite(c)) return c.json({ error: 'cross_site' }, 403);
    await logout(c);
    return c.redirect('/login', 303);
  });

  const server = await new Promise<ServerType>((resolve) => {
    const listening = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () =>
      resolve(listening),
    );
  });
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`,
    latchkey,
    app,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Whether an unsafe request comes from this site's own pages (Fetch Metadata, else Origin). */
function fromThisSite(c: Context): boolean {
  const headers = {
    method: c.req.method,
    origin: c.req.header('origin') ?? null,
    referer: c.req.header('referer') ?? null,
    secFetchSite: c.req.header('sec-fetch-site') ?? null,
  };
  return isSameOrigin(headers, new URL(c.req.url).origin);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await start();
  console.log(`hono example on ${url} (${demoUser.username} / ${demoUser.password})`);
}
