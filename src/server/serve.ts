import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { auditLog } from '../audit.js';
import { ConfigError, CsrfTokens, Latchkey } from '../index.js';
import { createApp } from './app.js';
import type { ServeConfig } from './config.js';
import { loadSecret } from './secret.js';
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
  const csrf = new CsrfTokens(loadSecret(config.secretFile));
  const tls = config.tls && readTls(config.tls);
  const audit = pino.destination({ dest: config.auditLog ?? 1, sync: true });
  const store = await openStore(config);
  let server: Server;
  try {
    const latchkey = new Latchkey({
      store,
      users: store,
      throttle: { store },
      remember: { store },
      idleTimeout: config.idleTimeout,
      absoluteTimeout: config.absoluteTimeout,
      touchInterval: config.touchInterval,
      reauthWindow: config.reauthWindow,
      cookieName: config.cookieName,
      onEvent: auditLog(audit),
    });
    const app = createApp({
      latchkey,
      store,
      allowSignup: config.allowSignup,
      trustedProxies: config.trustedProxies,
      csrf,
      https: config.behindHttps || tls !== null,
    });
    server = tls ? createHttpsServer(tls, app) : createHttpServer(app);
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
    url: `${tls ? 'https' : 'http'}://${host}:${port}`,
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
        audit.flushSync();
      })();
      return closing;
    },
  };
}

function readTls(files: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(`${flag} ${file}: cannot read it (${(error as Error).message})`);
    }
  };
  return { cert: read(files.cert, '--tls-cert'), key: read(files.key, '--tls-key') };
}
