/**
 * `node bench/profile.mjs <case name part> [seconds]`: loads one case's server under
 * `--cpu-prof` and prints where its time goes (self time by function, then by file).
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CASES } from './cases.mjs';
import { startServer } from './child.mjs';
import { startCli } from './cli-server.mjs';
import { load } from './load.mjs';

const [part = 'latchkey SQLite', seconds = '8'] = process.argv.slice(2);
const benchCase = CASES.find((c) => c.name.includes(part));
if (!benchCase) throw new Error(`no case named like ${part}`);
const dir = mkdtempSync(join(tmpdir(), 'latchkey-prof-'));
const execArgv = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
const child = benchCase.serve
  ? await startCli(benchCase.serve, { execArgv })
  : await startServer(benchCase.module ?? '', benchCase.options ?? {}, { execArgv });
const result = await load(child, { connections: 50, seconds: Number(seconds) });
await child.stop();
console.log(`${benchCase.name}: ${Math.round(result.rps)} req/s under the profiler`);

// The largest profile: a `--workers` primary writes a small one of its own.
const file = readdirSync(dir)
  .map((name) => join(dir, name))
  .sort((a, b) => statSync(b).size - statSync(a).size)[0];
/** @type {{ nodes: { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }[], samples: number[] }} */
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
/** @type {Map<string, number>} */
const byFunction = new Map();
/** @type {Map<string, number>} */
const byFile = new Map();
for (const id of profile.samples) {
  const { functionName, url, lineNumber } = byId.get(id)?.callFrame ?? {};
  const where = (url ?? '').replace(/^.*\/(node_modules|dist|bench)\//, '$1/') || '(native)';
  const bump = (/** @type {Map<string, number>} */ map, /** @type {string} */ key) =>
    map.set(key, (map.get(key) ?? 0) + 1);
  bump(byFunction, `${functionName || '(anonymous)'} ${where}:${(lineNumber ?? 0) + 1}`);
  bump(byFile, where);
}
const total = profile.samples.length;
/** @param {Map<string, number>} map @param {number} top */
const print = (map, top) => {
  for (const [key, n] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
};
console.log('\nself time by function:');
print(byFunction, 25);
console.log('\nself time by file:');
print(byFile, 15);
console.log(`\nprofile: ${file}`);
