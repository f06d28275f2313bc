import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express, { type Request } from 'express';
import {
  type Duration,
  isSameOrigin,
  Latchkey,
  MemoryStore,
  type SessionStore,
  safeNextPath,
} from 'latchkey';
import { authenticate, login, logout, requireAuth } from 'latchkey/express';

// The snapshot latchkey keeps for its own accounts: `req.auth.user` is typed from here on.
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

  const app = express();
  app.set('trust proxy', 'loopback'); // req.ip is the client's address behind a local proxy
  app.use(express.json(), express.urlencoded({ extended: false }));
  app.use(authenticate(latchkey));

  app.get('/login', (_req, res) => {
    res.type('html').send(LOGIN_PAGE);
  });
  app.post('/login', async (req, res) => {
    // Login CSRF: another site's form must not sign the browser in to an account it chose.
    if (!fromThisSite(req)) return void res.status(403).json({ error: 'cross_site' });
    const result = await login(req, res, req.body ?? {});
    if (result.ok) {
      if (req.is('urlencoded')) res.redirect(303, nextPath(req.query.next));
      else res.json({ user: result.user });
    } else if (result.error === 'too_many_attempts') {
      res.set('Retry-After', String(result.retryAfterSeconds)).status(429);
      res.json({ error: result.error });
    } else {
      res.status(401).json({ error: result.error });
    }
  });
  app.get('/dashboard', requireAuth(), (req, res) => {
    res.type('text').send(`Hello, ${req.auth?.user.username}`);
  });
  app.get('/api/me', requireAuth(), (req, res) => {
    res.json({ user: req.auth?.user });
  });
  app.post('/logout', async (req, res) => {
    if (!fromThisSite(req)) return void res.status(403).json({ error: 'cross_site' });
    await logout(req, res);
    res.redirect(303, '/login');
  });

  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(port, '127.0.0.1', () => resolve(listening));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    latchkey,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Whether an unsafe request comes from this site's own pages (Fetch Metadata, else Origin). */
function fromThisSite(req: Request): boolean {
  const headers = {
    method: req.method,
    origin: req.get('origin') ?? null,
    referer: req.get('referer') ?? null,
    secFetchSite: req.get('sec-fetch-site') ?? null,
  };
  return isSameOrigin(headers, `${req.protocol}://${req.get('host')}`);
}

/** Where a form login returns to: the page that sent the browser to /login, if it is ours. */
function nextPath(next: unknown): string {
  return safeNextPath(typeof next === 'string' ? next : null) ?? '/dashboard';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await start();
  console.log(`express example on ${url} (${demoUser.username} / ${demoUser.password})`);
}
