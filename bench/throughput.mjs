/**
 * The main table: every case in its own server process, loaded in alternating rounds
 * (round 1: every case, round 2: every case, ...) so drift hits all cases alike.
 */
import { CASES } from './cases.mjs';
import { startServer } from './child.mjs';
import { startCli } from './cli-server.mjs';
import { load } from './load.mjs';
import { memcachedCommandCounts } from './memcached.mjs';
import { rowOf } from './report.mjs';
import { commandDelta, redisCommandCounts } from './services.mjs';

/**
 * @param {{ rounds: number, seconds: number, warmupSeconds: number, connections: number, only?: string }} settings
 * @param {{ redis: any, postgresReason: string | null, memcached: any }} services
 */
export async function measureThroughput(settings, services) {
  // `--only a,b`: cases whose name contains any of the parts, with their floors (bare always
  // runs: it is the ratio's base).
  const parts = settings.only?.split(',').map((part) => part.trim().toLowerCase()) ?? [];
  const named = CASES.filter(
    (c) =>
      parts.length === 0 ||
      c.module === 'bare' ||
      parts.some((part) => c.name.toLowerCase().includes(part)),
  );
  const floors = new Set(named.map((c) => c.floor));
  const wanted = CASES.filter((c) => named.includes(c) || floors.has(c.name));
  const { runnable, skipped } = runnableCases(wanted, services);
  /** @type {{ name: string, child: import('./child.mjs').ServerChild, usesRedis: boolean, usesMemcached: boolean }[]} */
  const running = [];
  for (const benchCase of runnable) {
    try {
      const env = serviceEnv(services);
      const child = benchCase.serve
        ? await startCli(benchCase.serve)
        : await startServer(benchCase.module ?? '', benchCase.options ?? {}, { env });
      running.push({
        name: benchCase.name,
        child,
        usesRedis: !!benchCase.needs?.includes('redis'),
        usesMemcached: !!benchCase.needs?.includes('memcached'),
      });
    } catch (error) {
      skipped.push({ name: benchCase.name, reason: /** @type {Error} */ (error).message });
    }
  }
  try {
    for (const { name, child } of running) {
      process.stdout.write(`warm-up ${name}\n`);
      await load(child, { connections: settings.connections, seconds: settings.warmupSeconds });
    }
    /** @type {Map<string, import('./report.mjs').Round[]>} */
    const rounds = new Map(running.map(({ name }) => [name, []]));
    /** One load of one case, with what it cost the server and its store. */
    const measure = async (
      /** @type {(typeof running)[number]} */ server,
      /** @type {number} */ round,
    ) => {
      const { name, child, usesRedis, usesMemcached } = server;
      await child.ask('reset');
      const before = usesRedis ? await redisCommandCounts(services.redis.client) : null;
      const mcBefore = usesMemcached
        ? await memcachedCommandCounts(services.memcached.address)
        : null;
      const result = await load(child, settings);
      const after = usesRedis ? await redisCommandCounts(services.redis.client) : null;
      const mcAfter = usesMemcached
        ? await memcachedCommandCounts(services.memcached.address)
        : null;
      const stats = await child.ask('stats');
      const { store, cpuMicros } = stats;
      process.stdout.write(
        `round ${round}/${settings.rounds} ${name}: ${Math.round(result.rps)} req/s, p99 ${result.p99} ms\n`,
      );
      return {
        ...result,
        handled: stats.handled ?? result.requests,
        cpuMicros,
        storeCalls: store?.calls ?? null,
        storeWrites: store?.writes ?? null,
        byMethod: store?.byMethod ?? null,
        queries: store?.queries ?? null,
        redis: before && after ? commandDelta(before, after) : null,
        memcached: mcBefore && mcAfter ? commandDelta(mcBefore, mcAfter) : null,
      };
    };
    const [bare, ...others] = running; // bare always runs, first
    for (let round = 1; round <= settings.rounds; round++) {
      // This machine drifts within a round: every other round runs the cases backwards, so over
      // two rounds a drift falls on a row and its floor alike; bare opens and closes each round,
      // and the round's ratios are to the mean of the two.
      const opening = await measure(bare, round);
      const measured = [];
      for (const server of round % 2 ? others : [...others].reverse()) {
        measured.push({ name: server.name, result: await measure(server, round) });
      }
      const closing = await measure(bare, round);
      const bareRps = (opening.rps + closing.rps) / 2;
      rounds.get(bare.name)?.push({ ...opening, rps: bareRps, ratio: 1 });
      for (const { name, result } of measured) {
        rounds.get(name)?.push({ ...result, ratio: result.rps / bareRps });
      }
    }
    // Each round's ratio to the row's floor, from the same round (a floor that could not run: none).
    for (const { name } of running) {
      const floor = CASES.find((c) => c.name === name)?.floor;
      const floorRounds = floor ? rounds.get(floor) : undefined;
      const own = rounds.get(name) ?? [];
      own.forEach((r, i) => {
        r.floor = floorRounds ? { name: floor, ratio: r.rps / floorRounds[i].rps } : null;
      });
    }
    return { rows: running.map(({ name }) => rowOf(name, rounds.get(name) ?? [])), skipped };
  } finally {
    await Promise.all(running.map(({ child }) => child.stop()));
  }
}

/**
 * Where a case's server finds the bench's services.
 * @param {{ redis: any, memcached: any }} services
 */
export function serviceEnv(services) {
  return {
    ...(services.redis.url ? { LATCHKEY_BENCH_REDIS_URL: services.redis.url } : {}),
    ...(services.memcached.address ? { LATCHKEY_BENCH_MEMCACHED: services.memcached.address } : {}),
  };
}

/**
 * The cases whose services are up here, and the others with the reason they cannot run.
 * @param {import('./cases.mjs').BenchCase[]} cases
 * @param {{ redis: any, postgresReason: string | null, memcached: any }} services
 */
export function runnableCases(cases, services) {
  /** @type {import('./cases.mjs').BenchCase[]} */
  const runnable = [];
  /** @type {{ name: string, reason: string }[]} */
  const skipped = [];
  for (const benchCase of cases) {
    const reason = missingService(benchCase, services);
    if (reason) skipped.push({ name: benchCase.name, reason });
    else runnable.push(benchCase);
  }
  return { runnable, skipped };
}

/**
 * Why a case cannot run here (a service it needs is down), or null.
 * @param {import('./cases.mjs').BenchCase} benchCase
 * @param {{ redis: any, postgresReason: string | null, memcached: any }} services
 */
function missingService(benchCase, services) {
  if (benchCase.needs?.includes('redis') && services.redis.reason) return services.redis.reason;
  if (benchCase.needs?.includes('memcached') && services.memcached.reason)
    return services.memcached.reason;
  if (benchCase.needs?.includes('postgres') && services.postgresReason)
    return services.postgresReason;
  return null;
}
