/**
 * `npm run bench -- --instructions`: the rows whose floor is the Map lookup (memory, SQLite and
 * the two validation caches), that floor and bare node:http, counted in instructions per request
 * on the server's main thread under valgrind's callgrind (bench/callgrind.mjs), one case after
 * another. A shared machine moves req/s by tens of percent from run to run; this count of an
 * in-process row it does not move (within about 4% between processes), so those floor targets can be
 * checked on any day. It leaves out the kernel's share of a request (about the same system calls
 * for a row and its floor).
 *
 * The rows with a client floor (Redis, PostgreSQL) are not counted here: a request's share of the
 * client's batched writes and reads depends on timing, and the same server counted in another
 * process gave 205,000 to 384,000 instructions a request. Their targets stand on req/s.
 */
import { instructionsPerRequest } from './callgrind.mjs';
import { CASES, FLOOR_TARGETS, MAP_FLOOR } from './cases.mjs';
import { runnableCases, serviceEnv } from './throughput.mjs';

/**
 * @param {{ seconds: number, connections: number }} settings
 * @param {{ redis: any, postgresReason: string | null, memcached: any }} services
 */
export async function measureInstructions(settings, services) {
  const targets = FLOOR_TARGETS.filter(([name]) =>
    CASES.some((c) => c.name === name && c.floor === MAP_FLOOR),
  );
  const wanted = CASES.filter(
    (c) => c.module === 'bare' || c.name === MAP_FLOOR || targets.some(([name]) => name === c.name),
  );
  /** @type {Map<string, number>} */
  const counted = new Map();
  const { runnable, skipped } = runnableCases(wanted, services);
  for (const benchCase of runnable) {
    const { instructions } = await instructionsPerRequest(
      benchCase.module ?? '',
      benchCase.options ?? {},
      { env: serviceEnv(services), connections: settings.connections, seconds: settings.seconds },
    );
    process.stdout.write(`${benchCase.name}: ${Math.round(instructions)} instructions / req\n`);
    counted.set(benchCase.name, instructions);
  }
  const bare = counted.get(CASES[0]?.name ?? '');
  const rows = wanted
    .filter((c) => counted.has(c.name))
    .map((c) => {
      const instructions = /** @type {number} */ (counted.get(c.name));
      const floor = c.floor === undefined ? undefined : counted.get(c.floor);
      const floorRatio = floor === undefined ? null : round2(floor / instructions);
      const min = targets.find(([name]) => name === c.name)?.[1] ?? null;
      return {
        name: c.name,
        instructions: Math.round(instructions),
        ratioToBare: bare === undefined ? null : round2(bare / instructions),
        floor: c.floor ?? null,
        floorRatio,
        target: min,
        met: min === null || floorRatio === null ? null : floorRatio >= min,
      };
    });
  const checks = targets.map(([name, min]) => {
    const row = rows.find((r) => r.name === name);
    return {
      target: `${name} >= ${min.toFixed(2)} of its floor, in instructions`,
      measured: row?.floorRatio != null ? row.floorRatio.toFixed(2) : 'not run',
      met: row?.met ?? null,
    };
  });
  const verdict = (/** @type {(typeof rows)[number]} */ r) =>
    r.target === null ? '' : `>= ${r.target.toFixed(2)} of floor: ${r.met ? 'met' : '**missed**'}`;
  const table = [
    '| case | instructions / req | ratio to bare | ratio to its floor | target |',
    '|---|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.instructions.toLocaleString('en')} | ${r.ratioToBare?.toFixed(2) ?? '-'} | ${r.floorRatio?.toFixed(2) ?? '-'} | ${verdict(r)} |`,
    ),
    ...skipped.map((s) => `| ${s.name} | skipped: ${s.reason} | | | |`),
  ].join('\n');
  return { rows, skipped, checks, table };
}

const round2 = (/** @type {number} */ value) => Math.round(value * 100) / 100;
