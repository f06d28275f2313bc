import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Latchkey } from 'latchkey';
import { appendSetCookie, authenticate } from 'latchkey/node';
import { describe } from 'vitest';
import { start } from '../../examples/node/app.js';
import { assuranceFlowTests, type StartAssuranceApp, seedFlowTests } from './flow.js';

describe('latchkey/node: the example app over real HTTP', () => {
  seedFlowTests(start);
});

/** latchkey/node has no login helpers: the app calls the core and sets its cookies. */
async function route(latchkey: Latchkey, req: IncomingMessage, res: ServerResponse) {
  const json = (status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const context = { ip: req.socket.remoteAddress, cookie: req.headers.cookie };
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  switch (`${req.method} ${path}`) {
    case 'POST /login': {
      const result = await latchkey.login(await bodyOf(req), context);
      if ('setCookie' in result) appendSetCookie(res, result.setCookie);
      return result.ok ? json(200, { user: result.user }) : json(401, { error: result.error });
    }
    case 'POST /login/second-factor': {
      const { code } = await bodyOf(req);
      const result = await latchkey.completeLogin({ type: 'totp', code }, context);
      appendSetCookie(res, result.setCookie);
      return result.ok ? json(200, { user: result.user }) : json(401, { error: result.error });
    }
    case 'GET /api/me':
    case 'GET /api/settings': {
      const aal = path === '/api/me' ? undefined : 2;
      const auth = await authenticate(latchkey, req, res, { aal });
      return auth && json(200, { aal: auth.session.aal });
    }
    case 'GET /settings': {
      const auth = await authenticate(latchkey, req, res, { aal: 2 });
      return auth && res.end(`Settings of ${auth.user.username}`);
    }
    default:
      return json(404, { error: 'not_found' });
  }
}

async function bodyOf(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return JSON.parse(text);
}

const startAssurance: StartAssuranceApp = async (latchkey) => {
  const server = createServer((req, res) => {
    route(latchkey, req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

describe('latchkey/node: assurance levels over real HTTP', () => {
  assuranceFlowTests(startAssurance);
});
