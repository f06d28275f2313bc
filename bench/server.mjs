/**
 * One bench server in its own process: `node bench/server.mjs <module> [json options]`, forked
 * with IPC. It listens on a free loopback port, logs itself in once, and reports
 * `{ type: 'ready', port, cookie }`. Then it answers the runner's `reset` and `stats` messages
 * (store calls and event-loop delay since the last reset).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Skip } from './stores.mjs';

const [name, json = '{}'] = process.argv.slice(2);
/** @param {object} message */
const send = (message) => process.send?.(message);

try {
  const module = await import(`./servers/${name}.mjs`);
  const { server, counter, close } = await module.start(JSON.parse(json));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = server.address();
  // Store calls are divided by requests the server saw: autocannon drops the ones in flight at its stop.
  let handled = 0;
  // CPU time per request survives the noise of a shared machine better than req/s does.
  let cpuStart = process.cpuUsage();
  server.prependListener('request', () => handled++);
  const cookie = await logIn(port);
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();

  process.on('message', async (/** @type {{ id: number, type: string }} */ message) => {
    if (message.type === 'reset') {
      counter.reset();
      loopDelay.reset();
      handled = 0;
      cpuStart = process.cpuUsage();
      send({ id: message.id });
    } else if (message.type === 'stats') {
      const cpu = process.cpuUsage(cpuStart);
      send({
        id: message.id,
        handled,
        cpuMicros: cpu.user + cpu.system,
        store: counter.totals(),
        eventLoop: delayOf(loopDelay),
      });
    } else if (message.type === 'stop') {
      server.closeAllConnections?.();
      server.close();
      await close?.();
      process.exit(0);
    }
  });
  send({ type: 'ready', port, cookie });
} catch (error) {
  const skipped = error instanceof Skip;
  send({ type: skipped ? 'skip' : 'error', message: String(error?.message ?? error) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100);
}

/**
 * POSTs /login on itself and gives the session cookie as a `Cookie` header value.
 * @param {number} port
 */
async function logIn(port) {
  // Cases with accounts (the login storm) read these credentials; the others ignore the body.
  const response = await fetch(`http://127.0.0.1:${port}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'bench', password: 'correct horse battery staple' }),
  });
  const pairs = response.headers.getSetCookie().map((line) => line.split(';')[0]);
  if (pairs.length === 0) throw new Error(`login set no cookie (status ${response.status})`);
  return pairs.join('; ');
}

/** @param {import('node:perf_hooks').IntervalHistogram} histogram nanoseconds in, ms out */
function delayOf(histogram) {
  const ms = (/** @type {number} */ ns) => Math.round(ns / 1e4) / 100;
  return {
    p50: ms(histogram.percentile(50)),
    p99: ms(histogram.percentile(99)),
    max: ms(histogram.max),
  };
}
