/**
 * `node bench/ladder.mjs [store] [rounds] [--instructions]`: where a latchkey row's time goes,
 * layer by layer. Runs each step of bench/servers/ladder.mjs (from the Map floor up to the
 * latchkey row) in its own process under the bench's load, and prints what each step adds:
 * - by default, the server's CPU time per request and req/s, in alternating order each round
 *   (CPU per request survives a shared machine's noise better than req/s; `--cpu-prof` is no help
 *   here: it puts most samples in `writev` and idle, whatever the case);
 * - with `--instructions`, the instructions the server's main thread runs per request, counted by
 *   valgrind's callgrind after a warm-up: the same figure on a busy machine as on a quiet one
 *   (user space only: the kernel's share of a request is not in it). Needs `valgrind`.
 */
import { parseArgs } from 'node:util';
import { instructionsPerRequest } from './callgrind.mjs';
import { startServer } from './child.mjs';
import { load } from './load.mjs';
import { stepsFor } from './servers/ladder.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { instructions: { type: 'boolean' } },
});
const [store = 'memory', roundsArg = values.instructions ? '1' : '3'] = positionals;
const rounds = Number(roundsArg);
const STEPS = stepsFor(store);
const measure = values.instructions ? instructionsOf : cpuPerRequest;
/** @type {Map<string, { cost: number[], rps: number[] }>} */
const measured = new Map(STEPS.map((step) => [step, { cost: [], rps: [] }]));
for (let round = 0; round < rounds; round++) {
  const order = round % 2 ? [...STEPS].reverse() : STEPS;
  for (const step of order) {
    const { cost, rps } = await measure(step);
    measured.get(step)?.cost.push(cost);
    measured.get(step)?.rps.push(rps);
  }
}

const mean = (/** @type {number[]} */ list) => list.reduce((a, b) => a + b, 0) / list.length;
const [unit, digits] = values.instructions ? ['instructions / req', 0] : ['server CPU µs / req', 1];
console.log(`ladder, ${store} store, ${rounds} round(s), 50 connections`);
console.log(`| step | ${unit} | adds | ratio to floor |${values.instructions ? '' : ' req/s |'}`);
console.log(`|---|---:|---:|---:|${values.instructions ? '' : '---:|'}`);
const floor = mean(measured.get('floor')?.cost ?? []);
let previous = null;
for (const step of STEPS) {
  const { cost, rps } = measured.get(step) ?? { cost: [], rps: [] };
  const value = mean(cost);
  const adds =
    previous === null
      ? '-'
      : `${value - previous >= 0 ? '+' : ''}${(value - previous).toFixed(digits)}`;
  const rate = values.instructions ? '' : ` ${Math.round(mean(rps))} |`;
  console.log(
    `| ${step} | ${value.toFixed(digits)} | ${adds} | ${(floor / value).toFixed(2)} |${rate}`,
  );
  previous = value;
}

/** @param {string} step */
async function cpuPerRequest(step) {
  const child = await startServer('ladder', { step, store });
  try {
    await load(child, { connections: 50, seconds: 1 });
    await child.ask('reset');
    const result = await load(child, { connections: 50, seconds: 3 });
    const stats = await child.ask('stats');
    if (result.failures > 0) throw new Error(`${step}: ${result.failures} failed requests`);
    return { cost: stats.cpuMicros / stats.handled, rps: result.rps };
  } finally {
    await child.stop();
  }
}

/** @param {string} step */
async function instructionsOf(step) {
  const { instructions, rps } = await instructionsPerRequest('ladder', { step, store });
  return { cost: instructions, rps };
}
