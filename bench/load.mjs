/** autocannon, driven from the runner process (never from a server's own process). */
import autocannon from 'autocannon';

/**
 * @param {{ port: number, cookie: string, path?: string }} target the server, its cookie, and the
 *   path to load (default `/me`)
 * @param {{ connections: number, seconds: number }} settings
 */
export async function load(target, settings) {
  const result = await autocannon({
    url: `http://127.0.0.1:${target.port}${target.path ?? '/me'}`,
    connections: settings.connections,
    duration: settings.seconds,
    headers: { cookie: target.cookie, accept: 'application/json' },
  });
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000;
  return {
    requests: result.requests.total,
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    // A non-2xx answer means the session did not validate: the row would be measuring a 401.
    failures: result.non2xx + result.errors + result.timeouts,
  };
}
