/**
 * Instructions per request under valgrind's callgrind: the figure a busy machine does not move
 * (a shared machine's CPU steal moves req/s and CPU time by tens of percent). User space only:
 * the kernel's share of a request is not in it. Needs `valgrind`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './child.mjs';
import { load } from './load.mjs';

/** Under callgrind a request costs some 50 times as long: 40 s is some 5,000 requests. */
const WARM_UP_SECONDS = 40;

/** Whether `valgrind` is installed here. */
export function hasValgrind() {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the bench server `module` under callgrind, counting nothing until it is warm (the JIT
 * has optimized the hot path); then the main thread's instructions over a few seconds of load,
 * divided by the requests it handled.
 * @param {string} module a module of bench/servers
 * @param {object} options its options
 * @param {{ env?: NodeJS.ProcessEnv, connections?: number, seconds?: number }} [settings]
 * @returns {Promise<{ instructions: number, rps: number }>}
 */
export async function instructionsPerRequest(module, options, settings = {}) {
  const { env, connections = 50, seconds = 5 } = settings;
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-callgrind-'));
  const valgrind = [
    '--tool=callgrind',
    '--separate-threads=yes',
    `--callgrind-out-file=${join(dir, 'out.%p')}`,
    '-q',
    process.execPath,
  ];
  const child = await startServer(module, options, {
    env,
    execPath: 'valgrind',
    execArgv: valgrind,
  });
  const control = (/** @type {string[]} */ ...args) =>
    execFileSync('callgrind_control', [...args, String(child.pid)], { stdio: 'pipe' });
  try {
    // Counting from the start, zeroed after the warm-up. (Switching the count on only then, with
    // `--instr-atstart=no`, sent the Redis floor into a state where it spent 99% of its time
    // capturing stack traces in a timer, at 2 to 10 requests a second.)
    await load(child, { connections, seconds: WARM_UP_SECONDS });
    await child.ask('reset');
    control('--zero');
    const result = await load(child, { connections, seconds });
    control('--dump');
    const stats = await child.ask('stats');
    if (result.failures > 0) throw new Error(`${module}: ${result.failures} failed requests`);
    // Thread 1 is the event loop; the others are V8's compiler and GC helpers, and libuv's pool.
    let instructions = 0;
    for (const file of readdirSync(dir).filter((name) => name.endsWith('-01'))) {
      const text = readFileSync(join(dir, file), 'utf8');
      for (const [, total] of text.matchAll(/^(?:summary|totals): (\d+)/gm)) {
        instructions = Math.max(instructions, Number(total));
      }
    }
    if (instructions === 0) throw new Error(`${module}: callgrind wrote no count`);
    return { instructions: instructions / stats.handled, rps: result.rps };
  } finally {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
