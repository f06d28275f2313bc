/**
 * Login storm: authenticated GETs at a steady rate, first alone (idle), then while 50 connections
 * log in with argon2id back to back. Reports GET latency and the server's event-loop delay.
 */
import { availableParallelism } from 'node:os';
import autocannon from 'autocannon';
import { startServer } from './child.mjs';
import { PASSWORD, USERNAME } from './servers/login.mjs';

/** Steady, unsaturated GET load, so the delay measured is the storm's and not the GETs' own. */
const GET_LOAD = { connections: 10, overallRate: 1000 };
const LOGIN_CONNECTIONS = 50;

/**
 * Runs the storm as shipped (libuv's pool and latchkey's hashing limit at their defaults), then
 * with UV_THREADPOOL_SIZE=2, where latchkey's limit (pool size - 1) lets one hash run at a time
 * and leaves a core to the event loop. LATCHKEY_BENCH_UV_THREADPOOL_SIZE replaces the defaults.
 * @param {{ stormSeconds: number }} settings
 */
export async function measureStorm(settings) {
  const configured = process.env.LATCHKEY_BENCH_UV_THREADPOOL_SIZE;
  const runs = configured ? [configured] : [undefined, '2'];
  const results = [];
  for (const poolSize of runs) results.push(await measureOne(settings, poolSize));
  return {
    results: results.length === 1 ? results[0] : { default: results[0], uvThreadpool2: results[1] },
    text: results.map(stormText).join('\n'),
  };
}

/**
 * @param {{ stormSeconds: number }} settings
 * @param {string | undefined} poolSize
 */
async function measureOne(settings, poolSize) {
  process.stdout.write(
    `login storm (UV_THREADPOOL_SIZE ${poolSize ?? 'default'}): idle, then 50 concurrent logins\n`,
  );
  const env = poolSize ? { UV_THREADPOOL_SIZE: poolSize } : {};
  const child = await startServer('login', {}, { env });
  try {
    const seconds = settings.stormSeconds;
    await phase(child, 1, false); // warm-up: JIT and connections, not measured
    const idle = await phase(child, seconds, false);
    const storm = await phase(child, seconds, true);
    return {
      cpus: availableParallelism(),
      uvThreadpoolSize: Number(poolSize ?? process.env.UV_THREADPOOL_SIZE) || 4,
      getLoad: GET_LOAD,
      loginConnections: LOGIN_CONNECTIONS,
      seconds,
      idle,
      storm,
      eventLoopP99Ratio: Math.round((storm.eventLoop.p99 / idle.eventLoop.p99) * 100) / 100,
    };
  } finally {
    await child.stop();
  }
}

/**
 * @param {import('./child.mjs').ServerChild} child
 * @param {number} seconds
 * @param {boolean} withLogins
 */
async function phase(child, seconds, withLogins) {
  await child.ask('reset');
  const gets = autocannon({
    url: `http://127.0.0.1:${child.port}/me`,
    headers: { cookie: child.cookie, accept: 'application/json' },
    duration: seconds,
    ...GET_LOAD,
  });
  const logins = withLogins
    ? autocannon({
        url: `http://127.0.0.1:${child.port}/login`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: USERNAME, password: PASSWORD }),
        connections: LOGIN_CONNECTIONS,
        duration: seconds,
        timeout: 30,
      })
    : null;
  const [get, login] = await Promise.all([gets, logins]);
  const { eventLoop } = await child.ask('stats');
  return {
    getRps: Math.round(get.requests.total / seconds),
    getP50: get.latency.p50,
    getP99: get.latency.p99,
    getFailures: get.non2xx + get.errors + get.timeouts,
    loginsPerSecond: login ? Math.round((login.requests.total / seconds) * 10) / 10 : 0,
    loginP99: login?.latency.p99 ?? null,
    loginFailures: login ? login.non2xx + login.errors + login.timeouts : 0,
    eventLoop,
  };
}

/** @param {any} r */
function stormText(r) {
  const { idle, storm } = r;
  return [
    `Login storm (${r.loginConnections} concurrent argon2id logins, GETs at ${r.getLoad.overallRate} req/s over ${r.getLoad.connections} connections, ${r.seconds} s per phase, ${r.cpus} cpus, UV_THREADPOOL_SIZE ${r.uvThreadpoolSize}):`,
    `- idle:  GET p50 ${idle.getP50} ms, p99 ${idle.getP99} ms; event-loop delay p99 ${idle.eventLoop.p99} ms (max ${idle.eventLoop.max} ms)`,
    `- storm: GET p50 ${storm.getP50} ms, p99 ${storm.getP99} ms; event-loop delay p99 ${storm.eventLoop.p99} ms (max ${storm.eventLoop.max} ms); ${storm.loginsPerSecond} logins/s, login p99 ${storm.loginP99} ms, ${storm.loginFailures} failed`,
    `- event-loop p99 storm / idle: ${r.eventLoopP99Ratio} (target <= 2)`,
  ].join('\n');
}
