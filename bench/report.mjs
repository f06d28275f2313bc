/** Turns per-round measurements into rows, and rows into a markdown table and a JSON file. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { FLOOR_TARGETS, SERVE, SERVE_LOG_OFF, SERVE_WORKERS } from './cases.mjs';

/** @param {number[]} values */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * @typedef {{ rps: number, ratio: number, p50: number, p99: number, requests: number,
 *   failures: number, handled: number, cpuMicros: number, storeCalls: number | null, storeWrites: number | null, byMethod: Record<string, number> | null,
 *   redis: { total: number, byCommand: Record<string, number> } | null,
 *   memcached?: { total: number, byCommand: Record<string, number> } | null, queries?: number | null,
 *   floor?: { name: string, ratio: number } | null }} Round
 */

/**
 * One row per case: medians over rounds; per-request counts over all measured requests.
 * @param {string} name
 * @param {Round[]} rounds
 */
export function rowOf(name, rounds) {
  const requests = rounds.reduce((sum, r) => sum + r.handled, 0);
  const per = (/** @type {number} */ n) => (requests ? n / requests : 0);
  const sum = (/** @type {(r: Round) => number} */ pick) => rounds.reduce((s, r) => s + pick(r), 0);
  const counted = rounds.every((r) => r.storeCalls !== null);
  const redisRounds = rounds.filter((r) => r.redis);
  const memcachedRounds = rounds.filter((r) => r.memcached);
  /** @type {Record<string, number>} */
  const memcachedByCommand = {};
  for (const r of memcachedRounds) {
    for (const [name, n] of Object.entries(r.memcached?.byCommand ?? {})) {
      memcachedByCommand[name] = (memcachedByCommand[name] ?? 0) + n;
    }
  }
  return {
    name,
    rps: Math.round(median(rounds.map((r) => r.rps))),
    ratio: round(median(rounds.map((r) => r.ratio)), 2),
    floor: rounds[0]?.floor?.name ?? null,
    floorRatio: rounds[0]?.floor
      ? round(median(rounds.map((r) => r.floor?.ratio ?? Number.NaN)), 2)
      : null,
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    serverCpuMicrosPerRequest: round(per(sum((r) => r.cpuMicros)), 1),
    // Null for a server whose store is not counted (latchkey serve, a process of its own).
    storeCallsPerRequest: counted ? round(per(sum((r) => r.storeCalls ?? 0)), 3) : null,
    storeWritesPerRequest: counted ? round(per(sum((r) => r.storeWrites ?? 0)), 3) : null,
    redisCommandsPerRequest: redisRounds.length
      ? round(per(sum((r) => r.redis?.total ?? 0)), 3)
      : null,
    postgresQueriesPerRequest: rounds.some((r) => typeof r.queries === 'number')
      ? round(per(sum((r) => r.queries ?? 0)), 3)
      : null,
    memcachedCommandsPerRequest: memcachedRounds.length
      ? Object.fromEntries(
          Object.entries(memcachedByCommand).map(([name, n]) => [name, round(per(n), 3)]),
        )
      : null,
    failures: sum((r) => r.failures),
    rounds,
  };
}

/** @param {number} value @param {number} digits */
export function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * @param {ReturnType<typeof rowOf>[]} rows
 * @param {{ name: string, reason: string }[]} skipped
 */
export function markdownTable(rows, skipped) {
  const lines = [
    '| case | req/s | ratio to bare | ratio to its floor | p50 ms | p99 ms | server CPU µs / req | store calls / req | store writes / req | Redis commands, memcached commands or PostgreSQL statements / req |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const memcached = row.memcachedCommandsPerRequest;
    const redis =
      row.redisCommandsPerRequest ??
      row.postgresQueriesPerRequest ??
      (memcached
        ? Object.entries(memcached)
            .map(([name, n]) => `${n} ${name}`)
            .join(', ')
        : '-');
    const failed = row.failures ? ` (${row.failures} failed requests)` : '';
    lines.push(
      `| ${row.name}${failed} | ${row.rps} | ${row.ratio.toFixed(2)} | ${floorCell(row)} | ${row.p50} | ${row.p99} | ${row.serverCpuMicrosPerRequest} | ${row.storeCallsPerRequest ?? '-'} | ${row.storeWritesPerRequest ?? '-'} | ${redis} |`,
    );
  }
  for (const skip of skipped)
    lines.push(`| ${skip.name} | skipped: ${skip.reason} | | | | | | | | |`);
  return lines.join('\n');
}

/** `0.93 (floor: Map lookup)`, or `-` for a row with no floor (or whose floor did not run). */
function floorCell(/** @type {ReturnType<typeof rowOf>} */ row) {
  return row.floorRatio === null ? '-' : `${row.floorRatio.toFixed(2)} (${row.floor})`;
}

export function machine() {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/**
 * Writes `bench/results/<YYYY-MM-DD><suffix>.json` and gives its path: no suffix for a full run,
 * `-quick` for --quick, `-partial` for a run with --only, --no-scale or --no-storm, so an
 * iteration never overwrites the day's complete results.
 */
export function writeResults(/** @type {object} */ results, suffix = '') {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${new Date().toISOString().slice(0, 10)}${suffix}.json`, dir);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file.pathname;
}

/**
 * The issue's targets, checked against this run (ratios from the same alternating rounds).
 * @param {ReturnType<typeof rowOf>[]} rows
 * @param {Record<string, any> | null} scale
 * @param {any} storm
 */
export function checkTargets(rows, scale, storm) {
  const row = (/** @type {string} */ name) => rows.find((r) => r.name === name);
  /** @type {{ target: string, measured: string, met: boolean | null }[]} */
  const checks = [];
  const ratio = (/** @type {string} */ name, /** @type {number} */ min, extra = '') => {
    const r = row(name);
    checks.push({
      target: `${name} >= ${min.toFixed(2)} of bare${extra}`,
      measured: r ? `${r.ratio.toFixed(2)}` : 'not run',
      met: r ? r.ratio >= min : null,
    });
    return r;
  };
  // The second round's targets: each row against its own floor, from the same rounds.
  const toFloor = (/** @type {string} */ name, /** @type {number} */ min) => {
    const r = row(name);
    checks.push({
      target: `${name} >= ${min.toFixed(2)} of its floor${r?.floor ? ` (${r.floor})` : ''}`,
      measured: r?.floorRatio != null ? r.floorRatio.toFixed(2) : 'not run',
      met: r?.floorRatio != null ? r.floorRatio >= min : null,
    });
  };
  for (const [name, min] of FLOOR_TARGETS) toFloor(name, min);
  ratio(SERVE, 0.45, ' (default access log)');
  ratio('latchkey memory', 0.8);
  ratio('latchkey SQLite', 0.8);
  const redis = ratio('latchkey Redis', 0.6);
  if (redis) {
    checks.push({
      target: 'latchkey Redis: <= 1 Redis command per validated request',
      measured: String(redis.redisCommandsPerRequest),
      met: redis.redisCommandsPerRequest !== null && redis.redisCommandsPerRequest <= 1,
    });
  }
  const cached = ratio('latchkey Redis + cache', 0.8);
  if (cached) {
    checks.push({
      target: 'latchkey Redis + cache: 0 Redis commands on a hit',
      measured: String(cached.redisCommandsPerRequest),
      met: cached.redisCommandsPerRequest !== null && cached.redisCommandsPerRequest < 0.001,
    });
  }
  const statements = (
    /** @type {string} */ name,
    /** @type {number} */ max,
    /** @type {string} */ what,
  ) => {
    const r = row(name);
    if (r?.postgresQueriesPerRequest == null) return;
    checks.push({
      target: `${name}: ${what}`,
      measured: String(r.postgresQueriesPerRequest),
      met: r.postgresQueriesPerRequest <= max,
    });
  };
  statements('latchkey PostgreSQL', 1, '<= 1 statement per validated request');
  statements('latchkey PostgreSQL + cache', 0.001, '0 statements on a hit');
  const memcached = row('latchkey Memcached');
  if (memcached?.memcachedCommandsPerRequest) {
    const { get = 0, ...writes } = memcached.memcachedCommandsPerRequest;
    const written = Object.values(writes).reduce((a, b) => a + b, 0);
    checks.push({
      target:
        'latchkey Memcached: 1 get and 0 writes per validated request (within the touch interval)',
      measured: `${get} get, ${written} writes`,
      met: get <= 1 && written < 0.001,
    });
  }
  const value = (/** @type {any} */ x, /** @type {string} */ key) =>
    x && !x.skipped && !x.failed ? x[key] : undefined;
  // Every scale figure says the count it was measured at (quick mode stores fewer than the target's).
  const scaled = (/** @type {any} */ x) =>
    x?.sessions ? ` (measured at ${x.sessions.toLocaleString('en')})` : '';
  const limit = (
    /** @type {string} */ target,
    /** @type {number | undefined} */ measured,
    /** @type {number} */ max,
    /** @type {string} */ unit,
    /** @type {any} */ source,
    strict = false,
  ) =>
    checks.push({
      target,
      measured: measured === undefined ? 'not run' : `${measured} ${unit}${scaled(source)}`,
      // A figure measured below the target's count (quick mode) neither meets nor misses it.
      met:
        measured === undefined || (source?.sessions ?? 1_000_000) < 1_000_000
          ? null
          : strict
            ? measured < max
            : measured <= max,
    });
  limit(
    'memory store <= 250 B/session at 1,000,000',
    value(scale?.memory, 'bytesPerSession'),
    250,
    'B',
    scale?.memory,
  );
  limit(
    'SQLite validation p99 < 1 ms at 1,000,000',
    value(scale?.sqlite, 'p99'),
    1,
    'ms',
    scale?.sqlite,
    true,
  );
  limit(
    'PostgreSQL validation p99 < 2 ms at 1,000,000',
    value(scale?.postgres, 'p99'),
    2,
    'ms',
    scale?.postgres,
    true,
  );
  limit(
    'Redis <= 500 B/session at 1,000,000 (realistic session, with its index entry)',
    value(scale?.redis, 'bytesPerSession'),
    500,
    'B',
    scale?.redis,
  );
  const shipped = storm?.default ?? storm;
  limit(
    'login storm: event-loop p99 <= 2x idle (as shipped)',
    shipped?.eventLoopP99Ratio,
    2,
    'x',
    null,
  );
  return {
    checks,
    text: [
      'Targets:',
      ...checks.map(
        (c) => `- ${c.met === null ? '?' : c.met ? 'met' : 'MISSED'}: ${c.target}: ${c.measured}`,
      ),
    ].join('\n'),
  };
}

/**
 * What the server rows say beside their targets: the access log's cost (the same server with
 * it on and off, in the same rounds) and what a second worker gives when the load generator
 * shares the cores.
 * @param {ReturnType<typeof rowOf>[]} rows
 */
export function serverText(rows) {
  const row = (/** @type {string} */ name) => rows.find((r) => r.name === name);
  const on = row(SERVE);
  const off = row(SERVE_LOG_OFF);
  const two = row(SERVE_WORKERS);
  const lines = [];
  if (on && off) {
    lines.push(
      `- access log: on ${on.ratio.toFixed(2)} of bare, off ${off.ratio.toFixed(2)}; ` +
        `${round(on.serverCpuMicrosPerRequest - off.serverCpuMicrosPerRequest, 1)} µs of server CPU per request ` +
        `(${on.serverCpuMicrosPerRequest} against ${off.serverCpuMicrosPerRequest})`,
    );
  }
  if (on && two) {
    lines.push(
      `- --workers 2: ${round(two.rps / on.rps, 2)}x the requests of one process ` +
        `(${two.rps} against ${on.rps} req/s; the load generator runs on the same 2 cores)`,
    );
  }
  return lines.length > 0 ? ['Server:', ...lines].join('\n') : '';
}
