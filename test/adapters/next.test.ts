import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { Duration } from 'latchkey';
import { describe, vi } from 'vitest';
import { type RunningExample, seedFlowTests } from './flow.js';

type Handler = (request: Request) => Response | Promise<Response>;

/**
 * Serves examples/next the way Next.js would, without Next.js (too large to install here): a
 * real node:http server turning requests into Web `Request`s, `proxy.ts` for the paths its
 * matcher names, the route handlers by path, and app/dashboard/page.tsx's one line of logic.
 */
async function start({
  idleTimeout,
  clock,
}: {
  idleTimeout: Duration;
  clock: () => number;
}): Promise<RunningExample> {
  process.env.LATCHKEY_IDLE_TIMEOUT = String(idleTimeout);
  // lib/latchkey.ts takes no clock (a Next.js app has no place to pass one): it reads Date.now.
  const now = vi.spyOn(Date, 'now').mockImplementation(clock);
  vi.resetModules(); // a fresh lib/latchkey.ts (store, options) for every app
  const lib = await import('../../examples/next/lib/latchkey.js');
  const { proxy } = await import('../../examples/next/proxy.js');
  const routes: Record<string, Record<string, Handler>> = {
    '/login': await import('../../examples/next/app/login/route.js'),
    '/logout': await import('../../examples/next/app/logout/route.js'),
    '/api/me': await import('../../examples/next/app/api/me/route.js'),
  };
  await lib.seeded;

  async function handle(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === '/dashboard' || pathname.startsWith('/dashboard/')) {
      const answer = await proxy(request);
      if (answer) return answer;
      // app/dashboard/page.tsx: `const user = await currentUser(await headers());`
      const user = await lib.currentUser(request.headers);
      return new Response(`Hello, ${user?.username}`, { headers: { 'content-type': 'text/html' } });
    }
    const handler = routes[pathname]?.[request.method];
    return handler ? handler(request) : new Response('Not found', { status: 404 });
  }

  const server = createAdaptorServer({ fetch: handle, overrideGlobalObjects: false });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      now.mockRestore();
    },
  };
}

describe('latchkey/fetch: the Next.js example over real HTTP', () => {
  // The outage path of latchkey/fetch is tested in fetch.test.ts: this app's store is fixed.
  seedFlowTests(start, { outage: false });
});
