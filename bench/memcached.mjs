/**
 * A private memcached for the bench's Memcached row (`-M`: it never evicts a measured session),
 * and its command counts (`stats`), so commands per validated request count only the bench's own.
 */
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './services.mjs';

/** Sends `stats` to `address` and gives its counters, or null when nothing answers. */
function stats(/** @type {string} */ address) {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const socket = createConnection({ host, port: Number(port) });
    let reply = '';
    const done = (/** @type {Record<string, number> | null} */ value) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(1000, () => done(null));
    socket.once('error', () => done(null));
    socket.once('connect', () => socket.write('stats\r\n'));
    socket.on('data', (data) => {
      reply += data.toString();
      if (!reply.endsWith('END\r\n')) return;
      /** @type {Record<string, number>} */
      const counts = {};
      for (const match of reply.matchAll(/^STAT (\w+) (\d+)\r$/gm))
        counts[match[1]] = Number(match[2]);
      done(counts);
    });
  });
}

/** Gives `{ address, stop }`, or `{ reason }` when no memcached binary runs here. */
export async function openMemcached() {
  const port = await freePort();
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-M', '-m', '256'];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  const server = spawn('memcached', args, { stdio: 'ignore' });
  const started = await new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.once('spawn', () => resolve(true));
  });
  const address = `127.0.0.1:${port}`;
  for (let attempt = 0; started && attempt < 50; attempt++) {
    if (await stats(address)) return { address, stop: () => server.kill() };
    await sleep(100);
  }
  if (started) server.kill();
  return { reason: 'no memcached binary (Debian: apt-get install memcached)' };
}

/** The command counters that `stats` keeps: reads (`get`, `gets`) and every kind of write. */
const COUNTERS = {
  get: ['cmd_get'],
  'set/add/append/cas': ['cmd_set'],
  touch: ['cmd_touch'],
  delete: ['delete_hits', 'delete_misses'],
  'incr/decr': ['incr_hits', 'incr_misses', 'decr_hits', 'decr_misses'],
};

/** Commands per kind since the server started. */
export async function memcachedCommandCounts(/** @type {string} */ address) {
  const counts = (await stats(address)) ?? {};
  /** @type {Record<string, number>} */
  const byCommand = {};
  for (const [name, keys] of Object.entries(COUNTERS)) {
    byCommand[name] = keys.reduce((sum, key) => sum + (counts[key] ?? 0), 0);
  }
  return byCommand;
}
