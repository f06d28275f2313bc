/**
 * `npm run bench [-- --quick] [-- --only <name part>[,<name part>…]] [-- --rounds N --seconds N]
 * [-- --no-scale] [-- --no-storm]`: builds dist/, measures latchkey against
 * its peers (see cases.mjs), the scale figures and the login storm, prints a table and writes
 * bench/results/<date>.json. Absolute req/s drift between runs; the ratios to bare node:http
 * measured in the same round are the figures to quote.
 *
 * `npm run bench -- --instructions`: instead, the rows bounded by the Map floor, that floor and
 * bare in instructions per request under callgrind (instructions.mjs), the count a busy machine
 * does not move; writes bench/results/<date>-instructions.json. Needs `valgrind`; about 7 minutes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openMemcached } from './memcached.mjs';
import { checkTargets, machine, markdownTable, serverText, writeResults } from './report.mjs';
import { checkPostgres, openRedis } from './services.mjs';
import { measureThroughput } from './throughput.mjs';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    instructions: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-scale': { type: 'boolean', default: false },
    'no-storm': { type: 'boolean', default: false },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
  },
});

// Quick mode still measures the memory store at the target's 1,000,000 sessions (it fills in
// about 10 s); SQLite, PostgreSQL and Redis are scaled down to 100,000 there.
const settings = args.quick
  ? {
      rounds: 2,
      seconds: 2,
      stormSeconds: 3,
      warmupSeconds: 1,
      connections: 50,
      scaleSessions: 100_000,
      memoryScaleSessions: 1_000_000,
    }
  : {
      // Many short rounds rather than a few long ones: a round passes sooner, so a row and its
      // floor are measured closer in time on a machine whose speed drifts.
      rounds: 10,
      seconds: 3,
      // Each phase of the login storm (idle, then storm) in one go.
      stormSeconds: 10,
      warmupSeconds: 2,
      connections: 50,
      scaleSessions: 1_000_000,
      memoryScaleSessions: 1_000_000,
    };
// `--rounds N` / `--seconds N` override the mode's values (for iterating on a few cases).
if (args.rounds) settings.rounds = Number(args.rounds);
if (args.seconds) settings.seconds = Number(args.seconds);

build();
const redis = await openRedis();
const postgresReason = await checkPostgres();
const memcached = await openMemcached();
const services = { redis, postgresReason, memcached };
console.log(
  `mode ${args.instructions ? 'instructions: one count per case' : `${args.quick ? 'quick' : 'full'}: ${settings.rounds} rounds x ${settings.seconds} s`}, ` +
    `${settings.connections} connections; Redis: ${redis.reason ?? `${redis.url}${redis.private ? ' (private)' : ''}`}; ` +
    `PostgreSQL: ${postgresReason ?? 'up'}; memcached: ${memcached.reason ?? `${memcached.address} (private)`}`,
);

const phaseSeconds = /** @type {Record<string, number>} */ ({});
const timed = async (/** @type {string} */ name, /** @type {() => Promise<any>} */ run) => {
  const started = performance.now();
  try {
    return await run();
  } finally {
    phaseSeconds[name] = Math.round((performance.now() - started) / 100) / 10;
  }
};

try {
  if (args.instructions) await countInstructions();
  else await measureAll();
} finally {
  await redis.stop?.();
  memcached.stop?.();
}

async function countInstructions() {
  const { hasValgrind } = await import('./callgrind.mjs');
  if (!hasValgrind()) throw new Error('--instructions needs valgrind (apt-get install valgrind)');
  const { measureInstructions } = await import('./instructions.mjs');
  const counted = await timed('instructions', () =>
    measureInstructions({ connections: settings.connections, seconds: 5 }, services),
  );
  console.log(`\n${counted.table}\n`);
  const file = writeResults(
    {
      date: new Date().toISOString(),
      mode: 'instructions',
      machine: machine(),
      rows: counted.rows,
      skipped: counted.skipped,
      phaseSeconds,
      targets: counted.checks,
      table: counted.table,
    },
    '-instructions',
  );
  console.log(`wrote ${file}`);
}

async function measureAll() {
  const throughput = await timed('throughput', () =>
    measureThroughput({ ...settings, only: args.only }, services),
  );
  const table = markdownTable(throughput.rows, throughput.skipped);
  let scale = null;
  let storm = null;
  if (!args['no-scale']) {
    const { measureScale } = await import('./scale.mjs');
    scale = await timed('scale', () => measureScale(settings, services));
  }
  if (!args['no-storm']) {
    const { measureStorm } = await import('./storm.mjs');
    storm = await timed('storm', () => measureStorm(settings));
  }
  console.log(`\n${table}\n`);
  const server = serverText(throughput.rows);
  if (server) console.log(`${server}\n`);
  if (scale) console.log(scale.text);
  if (storm) console.log(storm.text);
  const targets = checkTargets(throughput.rows, scale?.results ?? null, storm?.results ?? null);
  console.log(`\n${targets.text}`);
  const file = writeResults(
    {
      date: new Date().toISOString(),
      mode: args.quick ? 'quick' : 'full',
      machine: machine(),
      settings,
      rows: throughput.rows,
      skipped: throughput.skipped,
      scale: scale?.results ?? null,
      loginStorm: storm?.results ?? null,
      phaseSeconds,
      targets: targets.checks,
      table,
      server,
    },
    args.only || args['no-scale'] || args['no-storm'] ? '-partial' : args.quick ? '-quick' : '',
  );
  console.log(`\nwrote ${file}`);
}

/** Rebuilds dist/ so the bench measures the current source; a failed build keeps the old dist. */
function build() {
  const tsc = new URL('../node_modules/typescript/bin/tsc', import.meta.url).pathname;
  const project = new URL('../tsconfig.build.json', import.meta.url).pathname;
  try {
    execFileSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit' });
  } catch {
    if (!existsSync(new URL('../dist/index.js', import.meta.url))) throw new Error('build failed');
    console.warn('build failed: measuring the dist/ already there');
  }
}
