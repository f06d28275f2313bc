import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// A child `node` imports the BUILT package (dist/, which test/global-setup.ts builds) by its
// public names, the way an app does. Two records of what it loaded, so neither module system
// slips through: an ESM resolve hook logs every URL the loader resolves, and the CommonJS cache
// lists every file `require` loaded (pino and prom-client are CommonJS).

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOOKS = new URL('./load-hooks.mjs', import.meta.url).href;
/** Heavy packages that only the server, metrics and audit log need. */
// zod is gone from the package altogether (the settings table parses its own values).
const HEAVY = ['pino', 'prom-client'];

const logs = mkdtempSync(join(tmpdir(), 'latchkey-light-import-'));
afterAll(() => rmSync(logs, { recursive: true, force: true }));

interface Loaded {
  /** Package name → the first module seen asking for it (or "require" for the CommonJS cache). */
  readonly packages: Map<string, string>;
  /** Every file URL the ESM loader resolved. */
  readonly urls: string[];
}

/** The npm package a path lies in (`@scope/name` or `name`), or null outside node_modules. */
function packageOf(path: string): string | null {
  const at = path.lastIndexOf('/node_modules/');
  if (at === -1) return null;
  const [first, second] = path.slice(at + '/node_modules/'.length).split('/');
  return first?.startsWith('@') ? `${first}/${second}` : (first ?? null);
}

/** Imports `specifiers` one after another in a fresh `node`, started in the package's folder. */
function load(specifiers: readonly string[]): Loaded {
  const log = join(logs, `${specifiers.join('+').replaceAll('/', '_')}.log`);
  const register = `import { register } from 'node:module'; register(${JSON.stringify(HOOKS)}, { data: { log: ${JSON.stringify(log)} } });`;
  const script = [
    ...specifiers.map((specifier) => `await import(${JSON.stringify(specifier)});`),
    "const { createRequire } = await import('node:module');",
    'process.stdout.write(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));',
  ].join('\n');
  const child = spawnSync(
    process.execPath,
    [
      '--import',
      `data:text/javascript,${encodeURIComponent(register)}`,
      '--input-type=module',
      '-e',
      script,
    ],
    // Started inside the package, `latchkey` resolves to itself through package.json `exports`.
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
  );
  expect(child.status, child.stderr).toBe(0);
  const packages = new Map<string, string>();
  const urls: string[] = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const [url, parent = ''] = line.split('\t');
    if (!url?.startsWith('file:')) continue;
    urls.push(url);
    const name = packageOf(fileURLToPath(url));
    if (name && !packages.has(name)) packages.set(name, parent);
  }
  for (const path of JSON.parse(child.stdout) as string[]) {
    const name = packageOf(path);
    if (name && !packages.has(name)) packages.set(name, 'require');
  }
  return { packages, urls };
}

describe('a light root import', () => {
  it.each(['latchkey', 'latchkey/node'])(
    'importing %s loads neither pino nor prom-client',
    (entry) => {
      const { packages, urls } = load([entry]);
      // The entry itself came from the build, so the log is of the real thing.
      expect(urls.some((url) => url.startsWith(new URL('dist/', `file://${ROOT}`).href))).toBe(
        true,
      );
      const heavy = HEAVY.filter((name) => packages.has(name)).map(
        (name) => `${name} (asked for by ${packages.get(name)})`,
      );
      expect(heavy, `${entry} loads heavy packages`).toEqual([]);
    },
  );

  it('the tracker sees each heavy package when it is loaded, through import and require alike', () => {
    const { packages } = load(['latchkey/audit', 'prom-client']);
    for (const name of HEAVY) expect(packages.has(name), name).toBe(true);
  });
});
