import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { auditLog } from '../audit.js';
import { ConfigError, CsrfTokens, HOST_PREFIX, Latchkey } from '../index.js';
import { createApp } from './app.js';
import { createLogger, errorFields, stdoutDestination } from './logs.js';
import { countStoreErrors, ServerMetrics } from './metrics.js';
import { observeAuth, observeEvents, observeRequests, requestIdOfObserved } from './observe.js';
import { evictionsOf, metricsOnly } from './routes/ops.js';
import { loadSecret } from './secret.js';
import { passkeySettings } from './setting-rules.js';
import type { Settings } from './settings.js';
import { describeTarget, openStores, type SessionsStore, type UsersStore } from './stores.js';
import { startSweeper } from './sweep.js';

export interface RunningServer {
  /** Where the server listens, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  /** The metrics-only listener's `/metrics` address (`--metrics-port`), or null. */
  readonly metricsUrl: string | null;
  /** The server log (pino): JSON lines on standard output, human lines on a terminal. */
  readonly logger: pino.Logger;
  /** Stops accepting, lets in-flight requests finish, then closes the store. */
  close(): Promise<void>;
}

/** Requests still running this long after a shutdown began are cut off. */
export const SHUTDOWN_GRACE_MS = 10_000;

/** How a `node:cluster` worker runs (see workers.ts); a lone server passes none of it. */
export interface WorkerRole {
  /** The cluster's worker id, on every log line. */
  readonly id: number;
  /** Whether this worker runs the expiry sweeps: exactly one worker does. */
  readonly sweeps: boolean;
}

/** Opens the store and listens. Rejects when the store cannot be opened or the port is taken. */
export async function startServer(
  config: Settings,
  worker: WorkerRole | null = null,
): Promise<RunningServer> {
  const secret = loadSecret(config.secretFile);
  const csrf = new CsrfTokens(secret);
  const tls = config.tlsCert && config.tlsKey ? readTls(config.tlsCert, config.tlsKey) : null;
  // One stream for standard output: the server log, and the audit log unless it has a file
  // (written synchronously, so a crash never loses an audit line).
  const stdout = stdoutDestination(process.stdout.isTTY === true);
  const logger = worker
    ? createLogger(config.logLevel, stdout).child({ worker: worker.id, pid: process.pid })
    : createLogger(config.logLevel, stdout);
  const audit =
    config.auditLog === null ? stdout : pino.destination({ dest: config.auditLog, sync: true });
  const metrics =
    config.metrics || config.metricsPort !== null
      ? new ServerMetrics({ cluster: worker !== null })
      : null;
  const opened = await openStores(config);
  const counted = <T extends object>(store: T): T =>
    metrics ? countStoreErrors(store, () => metrics.storeError()) : store;
  // One object for both roles when they share a store, so sweeps and locks see it once.
  const store: SessionsStore = counted(opened.sessions);
  const users: UsersStore = opened.plan.shared
    ? (store as SessionsStore & UsersStore)
    : counted(opened.users);
  const stores = { sessions: store, users };
  const evictions = evictionsOf(opened.sessions);
  if (metrics && evictions) metrics.watchEvictions(evictions);
  let server: Server | undefined;
  let metricsServer: Server | null = null;
  let sweeper: ReturnType<typeof startSweeper> | null = null;
  let listening: Server | undefined;
  const passkeys = passkeySettings(config);
  try {
    const latchkey = new Latchkey({
      store,
      users,
      throttle: { store, deviceSecret: secret },
      remember: { store: users, graceWindow: config.rememberGrace },
      idleTimeout: config.idleTimeout,
      absoluteTimeout: config.absoluteTimeout,
      touchInterval: config.touchInterval,
      reauthWindow: config.reauthWindow,
      cookieName: config.cookieName,
      allowUnprefixedCookieName: config.insecureCookieName,
      siteName: 'latchkey',
      // The secret file is the default key: SecretBox derives its own key from it.
      secondFactor: {
        store: users,
        secretKey: config.secretKey.length > 0 ? config.secretKey : secret,
        ...(passkeys ? { passkeys: { ...passkeys, rpName: 'latchkey' } } : {}),
      },
      onEvent: observeEvents(metrics, auditLog(audit)),
    });
    const app = createApp({
      latchkey,
      store,
      users,
      allowSignup: config.allowSignup,
      trustedProxies: config.trustProxy,
      csrf,
      https: config.behindHttps || tls !== null,
      loopbackOnly: !config.behindHttps && tls === null,
      forwardAuthHosts: config.forwardAuthHosts,
      twoFactorHosts: [...config.forwardAuthPolicy]
        .filter(([, level]) => level === 'two_factor')
        .map(([host]) => host),
      observer: observeAuth(metrics),
      onError: (error) => logger.error({ err: errorFields(error) }, 'request failed'),
      requestId: requestIdOfObserved,
    });
    const handler = observeRequests(app, {
      logger,
      trustedProxies: config.trustProxy,
      metrics: config.metrics ? metrics : null,
      metricsToken: config.metricsToken,
    });
    server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
    await listen(server, config.port, config.host);
    listening = server;
    if (metrics && config.metricsPort !== null) {
      metricsServer = createHttpServer(metricsOnly(metrics, config.metricsToken));
      await listen(metricsServer, config.metricsPort, config.host);
    }
    if (config.sweepInterval > 0 && (worker?.sweeps ?? true)) {
      sweeper = startSweeper({ interval: config.sweepInterval, latchkey, stores, logger, metrics });
    }
  } catch (error) {
    listening?.close();
    await opened.close();
    throw error;
  }
  const main = server;

  const url = `${tls ? 'https' : 'http'}://${hostPort(main)}`;
  const metricsUrl = metricsServer ? `http://${hostPort(metricsServer)}/metrics` : null;
  const sessionsAt = describeTarget(opened.plan.sessions);
  const usersAt = opened.plan.shared ? null : describeTarget(opened.plan.users);
  if (!config.cookieName.startsWith(HOST_PREFIX)) {
    logger.warn(
      `--insecure-cookie-name: the session cookie "${config.cookieName}" has no ${HOST_PREFIX} prefix, so a sibling subdomain can set or shadow it`,
    );
  }
  if (opened.plan.users.url !== null && /^memory/i.test(opened.plan.users.url.trim())) {
    logger.warn(
      'users and remember-me tokens live in memory (--users memory): lost when this process stops',
    );
  }
  logger.info(
    {
      store: sessionsAt,
      users: usersAt ?? sessionsAt,
      cache: config.cache,
      signup: config.allowSignup,
      metrics: metricsUrl ?? (config.metrics ? `${url}/metrics` : null),
      sweepInterval: config.sweepInterval,
      ...(worker ? { sweeps: worker.sweeps } : {}),
    },
    `latchkey listening on ${url} (store ${sessionsAt}${config.cache ? ' with cache' : ''}${usersAt === null ? '' : `, users ${usersAt}`}, sign-up ${config.allowSignup ? 'on' : 'off'})`,
  );
  let closing: Promise<void> | null = null;
  return {
    url,
    metricsUrl,
    logger,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => main.close(() => resolve()));
        metricsServer?.close();
        metricsServer?.closeAllConnections();
        // Keep-alive sockets would hold the close open: drop each as soon as it goes idle.
        const sweep = setInterval(() => main.closeIdleConnections(), 25);
        const deadline = setTimeout(() => main.closeAllConnections(), SHUTDOWN_GRACE_MS);
        await closed;
        clearInterval(sweep);
        clearTimeout(deadline);
        await sweeper?.stop();
        await opened.close();
        logger.info('latchkey stopped');
        if (audit !== stdout) audit.flushSync();
        stdout.flushSync();
      })();
      return closing;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function hostPort(server: Server): string {
  const { address, port } = server.address() as AddressInfo;
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

function readTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(`${flag} ${file}: cannot read it (${(error as Error).message})`);
    }
  };
  return { cert: read(certFile, '--tls-cert'), key: read(keyFile, '--tls-key') };
}
