/**
 * `node bench/ladder.mjs [store] [rounds]`: where a latchkey row's time goes, layer by layer.
 * Runs each step of bench/servers/ladder.mjs (from the Map floor up to the latchkey row) in its
 * own process under the bench's load, in alternating order each round, and prints the server's
 * CPU time per request and req/s for each, with what each step adds. CPU per request survives a
 * shared machine's noise better than req/s; `--cpu-prof` is no help here: it puts most samples
 * in `writev` and idle, whatever the case.
 */
import { startServer } from './child.mjs';
import { load } from './load.mjs';
import { STEPS } from './servers/ladder.mjs';

const [store = 'memory', roundsArg = '3'] = process.argv.slice(2);
const rounds = Number(roundsArg);
/** @type {Map<string, { cpu: number[], rps: number[] }>} */
const measured = new Map(STEPS.map((step) => [step, { cpu: [], rps: [] }]));
for (let round = 0; round < rounds; round++) {
  const order = round % 2 ? [...STEPS].reverse() : STEPS;
  for (const step of order) {
    const child = await startServer('ladder', { step, store });
    try {
      await load(child, { connections: 50, seconds: 1 });
      await child.ask('reset');
      const result = await load(child, { connections: 50, seconds: 3 });
      const stats = await child.ask('stats');
      if (result.failures > 0) throw new Error(`${step}: ${result.failures} failed requests`);
      measured.get(step)?.cpu.push(stats.cpuMicros / stats.handled);
      measured.get(step)?.rps.push(result.rps);
    } finally {
      await child.stop();
    }
  }
}

const mean = (/** @type {number[]} */ values) => values.reduce((a, b) => a + b, 0) / values.length;
console.log(`ladder, ${store} store, ${rounds} rounds of 3 s, 50 connections`);
console.log('| step | server CPU µs / req | adds | req/s |');
console.log('|---|---:|---:|---:|');
let previous = null;
for (const step of STEPS) {
  const { cpu, rps } = measured.get(step) ?? { cpu: [], rps: [] };
  const us = mean(cpu);
  const adds =
    previous === null ? '-' : `${us - previous >= 0 ? '+' : ''}${(us - previous).toFixed(1)}`;
  console.log(`| ${step} | ${us.toFixed(1)} | ${adds} | ${Math.round(mean(rps))} |`);
  previous = us;
}
