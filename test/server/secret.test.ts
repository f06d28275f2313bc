import { spawn } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from 'latchkey';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSecret } from '../../src/server/secret.js';
import { runCli, tempDir } from '../helpers/cli.js';

const temps: ReturnType<typeof tempDir>[] = [];
afterEach(() => {
  for (const temp of temps.splice(0)) temp.remove();
});
function dir(): string {
  const temp = tempDir();
  temps.push(temp);
  return temp.dir;
}

/** The built loadSecret (test/global-setup.ts builds dist/), as `latchkey serve` runs it. */
const BUILT = fileURLToPath(new URL('../../dist/server/secret.js', import.meta.url));

/**
 * Starts `count` processes that each call loadSecret(path) once all of them are up (a "go" file
 * appears), so they race for the missing file as servers started together do; gives what each read.
 */
async function loadTogether(path: string, count: number): Promise<string[]> {
  const go = `${path}.go`;
  const script = `import { existsSync } from 'node:fs';
import { loadSecret } from ${JSON.stringify(BUILT)};
process.stdout.write('ready\\n');
while (!existsSync(${JSON.stringify(go)}));
try { process.stdout.write(loadSecret(${JSON.stringify(path)})); }
catch (error) { process.stdout.write('error: ' + error.message); }`;
  const ready: Promise<void>[] = [];
  const results = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
    let out = '';
    ready.push(
      new Promise((resolve) => {
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          if (out.startsWith('ready\n')) resolve();
        });
      }),
    );
    return new Promise<string>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', () => resolve(out.replace(/^ready\n/, '')));
    });
  });
  await Promise.all(ready);
  writeFileSync(go, '');
  const read = await Promise.all(results);
  rmSync(go);
  return read;
}

describe('the server secret file', () => {
  it('is created owner-only with 32 random bytes on first start, then read as it is', () => {
    const path = join(dir(), 'secret');
    const secret = loadSecret(path);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(loadSecret(path)).toBe(secret);
    expect(readdirSync(join(path, '..'))).toEqual(['secret']);
  });

  it('an existing secret in a read-only directory is read, not rewritten', () => {
    const folder = join(dir(), 'ro');
    mkdirSync(folder);
    const path = join(folder, 'secret');
    const given = 'x'.repeat(40);
    writeFileSync(path, `${given}\n`, { mode: 0o600 });
    chmodSync(folder, 0o500);
    try {
      expect(loadSecret(path)).toBe(given);
    } finally {
      chmodSync(folder, 0o700);
    }
  });

  it('a missing directory is a ConfigError that names the file', () => {
    const path = join(dir(), 'no', 'such', 'secret');
    expect(() => loadSecret(path)).toThrow(ConfigError);
    expect(() => loadSecret(path)).toThrow(`--secret-file ${path}: cannot create it (`);
  });

  it('a directory in place of the file is a ConfigError: cannot read it', () => {
    const path = join(dir(), 'secret');
    mkdirSync(path);
    expect(() => loadSecret(path)).toThrow(`--secret-file ${path}: cannot read it (`);
  });

  it('a secret shorter than 32 characters is refused, and left as it was', () => {
    const path = join(dir(), 'secret');
    writeFileSync(path, 'short secret\n', { mode: 0o600 });
    expect(() => loadSecret(path)).toThrow(
      `--secret-file ${path}: holds less than 32 characters of secret`,
    );
    expect(readFileSync(path, 'utf8')).toBe('short secret\n');
  });

  it('latchkey serve with a bad secret file exits 2 with the reason, and never listens', async () => {
    const folder = dir();
    const path = join(folder, 'secret');
    writeFileSync(path, 'short\n', { mode: 0o600 });
    const result = await runCli(
      ['serve', '--port', '0', '--db', join(folder, 'db'), '--secret-file', path],
      { env: { LATCHKEY_SECRET_FILE: path } },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--secret-file ${path}: holds less than 32 characters`);
    expect(result.stdout + result.stderr).not.toMatch(/listening on/);
  });

  it('servers starting together all read the one whole secret, never an empty file', async () => {
    for (let round = 0; round < 2; round++) {
      const folder = dir();
      const path = join(folder, 'secret');
      const read = await loadTogether(path, 4);
      const written = readFileSync(path, 'utf8').trim();
      expect(written).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(read).toEqual(read.map(() => written));
      expect(readdirSync(folder)).toEqual(['secret']);
    }
  });
});
