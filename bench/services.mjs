/**
 * Redis and PostgreSQL for the bench. Redis is a private redis-server on a free port when the
 * binary is installed, so INFO commandstats and memory deltas count only the bench's own work.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { POSTGRES_URL, REDIS_URL } from './stores.mjs';

/** A port the OS reports free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address());
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts a private redis-server, or falls back to `LATCHKEY_BENCH_REDIS_URL` / 127.0.0.1:6379.
 * Gives `{ url, client, private, stop }` or `{ reason }` when no Redis answers.
 */
export async function openRedis() {
  const { createClient } = await import('redis');
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const started = await new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.once('spawn', () => resolve(true));
  });
  const url = started ? `redis://127.0.0.1:${port}` : REDIS_URL;
  for (let attempt = 0; attempt < 50; attempt++) {
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return {
        url,
        client,
        private: started,
        async stop() {
          await client.quit().catch(() => {});
          if (started) server.kill();
        },
      };
    } catch {
      await sleep(100);
    }
  }
  if (started) server.kill();
  return { reason: `no Redis answering at ${url}` };
}

/** Calls per Redis command since the server started (INFO commandstats). */
export async function redisCommandCounts(/** @type {any} */ client) {
  const text = await client.info('commandstats');
  /** @type {Record<string, number>} */
  const counts = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    counts[match[1]] = Number(match[2]);
  }
  return counts;
}

/**
 * Commands run between two {@link redisCommandCounts} readings, minus the INFO calls themselves.
 * `total` leaves out PING: the validation caches' heartbeat (4 a second per caching process,
 * whichever row is being loaded) is not work per request; `byCommand` still shows it.
 */
export function commandDelta(
  /** @type {Record<string, number>} */ before,
  /** @type {Record<string, number>} */ after,
) {
  /** @type {Record<string, number>} */
  const delta = {};
  let total = 0;
  for (const [name, calls] of Object.entries(after)) {
    const n = calls - (before[name] ?? 0) - (name === 'info' ? 1 : 0);
    if (n > 0) {
      delta[name] = n;
      if (name !== 'ping') total += n;
    }
  }
  return { total, byCommand: delta };
}

/** Gives null when PostgreSQL answers at the bench URL, else the reason. */
export async function checkPostgres() {
  try {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
    await client.connect();
    await client.query('select 1');
    await client.end();
    return null;
  } catch (error) {
    return `no PostgreSQL answering at ${POSTGRES_URL}: ${String(error?.message ?? error)}`;
  }
}
