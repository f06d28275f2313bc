import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { TurnBatches } from '../../src/server/logs.js';

/** A real synchronous pino destination on a temporary file, and what the file holds. */
function fileDestination() {
  const path = join(mkdtempSync(join(tmpdir(), 'latchkey-batches-')), 'log');
  const destination = pino.destination({ dest: path, sync: true, mkdir: true });
  return { destination, text: () => readFileSync(path, 'utf8') };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('TurnBatches, the server log between pino and its destination', () => {
  it("writes a turn's first line at once and the rest, in order, when the turn ends", async () => {
    const file = fileDestination();
    const batches = new TurnBatches(file.destination, null);
    batches.write('one\n');
    expect(file.text()).toBe('one\n');
    batches.write('two\n');
    batches.write('three\n');
    expect(file.text()).toBe('one\n');
    await nextTurn();
    expect(file.text()).toBe('one\ntwo\nthree\n');
    batches.write('four\n');
    expect(file.text()).toBe('one\ntwo\nthree\nfour\n');
  });

  it('flushSync hands over the lines still waiting for the end of the turn', () => {
    const file = fileDestination();
    const batches = new TurnBatches(file.destination, null);
    batches.write('a\n');
    batches.write('b\n');
    batches.flushSync();
    expect(file.text()).toBe('a\nb\n');
  });

  it('formats every line, batched or not', async () => {
    const file = fileDestination();
    const batches = new TurnBatches(file.destination, (line) => line.toUpperCase());
    batches.write('x\n');
    batches.write('y\n');
    await nextTurn();
    expect(file.text()).toBe('X\nY\n');
  });

  it('standard output keeps every line of the turn in which the process crashes', () => {
    // The built module (test/global-setup.ts builds dist/ before any test runs).
    const logs = new URL('../../dist/server/logs.js', import.meta.url).href;
    const crash = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { stdoutDestination } from ${JSON.stringify(logs)};
         const stdout = stdoutDestination(false);
         stdout.write('first\\n');
         stdout.write('second\\n');
         throw new Error('crash');`,
      ],
      { encoding: 'utf8' },
    );
    expect(crash.status).not.toBe(0);
    expect(crash.stderr).toContain('crash');
    expect(crash.stdout).toBe('first\nsecond\n');
  });
});
