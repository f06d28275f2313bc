import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Latchkey } from '../index.js';
import { createApp } from './app.js';
import type { ServeConfig } from './config.js';
import { openStore } from './store.js';

export interface RunningServer {
  /** Where the server listens, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish, then closes the store. */
  close(): Promise<void>;
}

/** Requests still running this long after a shutdown began are cut off. */
const SHUTDOWN_GRACE_MS = 10_000;

/** Opens the store and listens. Rejects when the store cannot be opened or the port is taken. */
export async function startServer(config: ServeConfig): Promise<RunningServer> {
  const store = await openStore(config);
  let server: ReturnType<typeof createServer>;
  try {
    const latchkey = new Latchkey({
      store,
      users: store,
      idleTimeout: config.idleTimeout,
      absoluteTimeout: config.absoluteTimeout,
      touchInterval: config.touchInterval,
      cookieName: config.cookieName,
    });
    const app = createApp({
      latchkey,
      store,
      allowSignup: config.allowSignup,
      trustedProxies: config.trustedProxies,
    });
    server = createServer(app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await store.close();
    throw error;
  }

  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Keep-alive sockets would hold the close open: drop each as soon as it goes idle.
        const sweep = setInterval(() => server.closeIdleConnections(), 25);
        const deadline = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        await closed;
        clearInterval(sweep);
        clearTimeout(deadline);
        await store.close();
      })();
      return closing;
    },
  };
}
