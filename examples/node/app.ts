import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  type Duration,
  isSameOrigin,
  Latchkey,
  MemoryStore,
  type SessionStore,
  safeNextPath,
} from 'latchkey';
import { appendSetCookie, authenticate } from 'latchkey/node';

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

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // Login CSRF (and logout CSRF): another site's form must not post here.
    if (req.method === 'POST' && !fromThisSite(req)) {
      return send(res, 403, 'application/json', JSON.stringify({ error: 'cross_site' }));
    }
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /login':
        return send(res, 200, 'text/html; charset=utf-8', LOGIN_PAGE);
      case 'POST /login': {
        const form = req.headers['content-type']?.startsWith('application/x-www-form-urlencoded');
        const body = await readBody(req);
        const credentials = form ? Object.fromEntries(new URLSearchParams(body)) : parseJson(body);
        const result = await latchkey.login(credentials, {
          ip: req.socket.remoteAddress,
          userAgent: req.headers['user-agent'],
          cookie: req.headers.cookie,
        });
        if (!result.ok && result.error === 'too_many_attempts') {
          res.setHeader('retry-after', String(result.retryAfterSeconds));
          return send(res, 429, 'application/json', JSON.stringify({ error: result.error }));
        }
        if (!result.ok)
          return send(res, 401, 'application/json', JSON.stringify({ error: result.error }));
        appendSetCookie(res, result.setCookie);
        if (!form) return send(res, 200, 'application/json', JSON.stringify({ user: result.user }));
        const next = safeNextPath(url.searchParams.get('next')) ?? '/dashboard';
        return void res.writeHead(303, { location: next }).end();
      }
      case 'GET /dashboard':
      case 'GET /api/me': {
        // Answers by itself (303 / 401 / 503) when there is no session.
        const auth = await authenticate(latchkey, req, res);
        if (!auth) return;
        if (url.pathname === '/api/me') {
          return send(res, 200, 'application/json', JSON.stringify({ user: auth.user }));
        }
        return send(res, 200, 'text/plain; charset=utf-8', `Hello, ${auth.user.username}`);
      }
      case 'POST /logout': {
        const { setCookie } = await latchkey.endSession(req.headers.cookie ?? null);
        appendSetCookie(res, setCookie);
        return void res.writeHead(303, { location: '/login' }).end();
      }
      default:
        return send(res, 404, 'text/plain', 'Not found');
    }
  }

  const server = createServer((req, res) => {
    route(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'text/plain', 'Internal error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    latchkey,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Whether an unsafe request comes from this site's own pages (Fetch Metadata, else Origin). */
function fromThisSite(req: IncomingMessage): boolean {
  const header = (name: string) => {
    const value = req.headers[name];
    return typeof value === 'string' ? value : null;
  };
  const headers = {
    method: req.method ?? 'GET',
    origin: header('origin'),
    referer: header('referer'),
    secFetchSite: header('sec-fetch-site'),
  };
  return isSameOrigin(headers, `http://${req.headers.host}`);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
}

/** The request body as text, refused beyond 8 KiB. */
async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 8192) throw new Error('body too large');
  }
  return body;
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await start();
  console.log(`node:http example on ${url} (${demoUser.username} / ${demoUser.password})`);
}
