import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The package as a user installs it: `npm pack`, then `npm install` of the tarball into a fresh
// project that compiles with `strict` and `skipLibCheck: false`. It uses the dist/ that
// test/global-setup.ts built (`--ignore-scripts`: `prepare` would rebuild dist/ under the feet
// of the other test files). Slow by nature (an install and a few tsc runs), never skipped.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SLOW = 240_000;
/**
 * Linked from this repo rather than installed: the compiler and Node's types (every TypeScript
 * project on Node has them) and what the package declares as peers, drivers and any `@types/*`
 * alike; nothing else, so a driver's types that the package does not declare are missing, as
 * they are for a user.
 */
const TOOLS = ['typescript', '@types/node'];
const TSCONFIG = {
  compilerOptions: {
    strict: true,
    skipLibCheck: false,
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    lib: ['ES2023'],
    types: ['node'],
    rootDir: 'src',
    outDir: 'out',
  },
};

interface Run {
  readonly code: number;
  readonly output: string;
}

/**
 * Runs a command to its end (killed after `timeout` ms); never rejects, so a failure shows its
 * output in the assertion.
 */
function run(file: string, args: readonly string[], cwd: string, timeout = 200_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, env: npmFreeEnv(), maxBuffer: 64 * 1024 * 1024, timeout },
      (error, stdout, stderr) => {
        // A number is the exit code; anything else (a signal, a spawn failure) is told by the message.
        const code = !error ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, output: `${stdout}${stderr}${code === -1 ? String(error?.message) : ''}` });
      },
    );
  });
}

/**
 * The environment without what an outer `npm run`/`npx` set for THIS package (its prefix, its
 * package fields), which would point npm back at the repo; registry, cache and proxy settings stay.
 */
function npmFreeEnv(): NodeJS.ProcessEnv {
  const keep =
    /^npm_config_(registry|cache|userconfig|globalconfig|cafile|ca|strict_ssl|proxy|https_proxy|noproxy|@.+:registry)$/i;
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !key.toLowerCase().startsWith('npm_') || keep.test(key),
    ),
  );
}

/**
 * A temp folder with no node_modules in any folder above it: Node and TypeScript look up every
 * ancestor, so a stray /tmp/node_modules would lend the project packages a user does not have.
 */
function isolatedTemp(): string {
  const clean = (dir: string): boolean => {
    for (let at = dir; ; at = dirname(at)) {
      if (existsSync(join(at, 'node_modules'))) return false;
      if (dirname(at) === at) return true;
    }
  };
  const base = [tmpdir(), '/var/tmp', homedir()].find(clean);
  if (!base) throw new Error('no temp folder without a node_modules above it');
  return mkdtempSync(join(base, 'latchkey-pack-'));
}

/** The first ```ts block under the README's "Library quick start" heading. */
function quickStart(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Library quick start'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!section.startsWith('\n## Library quick start') || !block) {
    throw new Error('README.md has no ```ts block under "## Library quick start"');
  }
  return block;
}

/** Drives the quick start's server: anonymous page, login, then the page with the cookie. */
const DRIVER = `import type { AddressInfo } from 'node:net';
import { server } from './quick-start-run.js';

await new Promise((resolve) => server.once('listening', resolve));
const base = \`http://127.0.0.1:\${(server.address() as AddressInfo).port}\`;
const anonymous = await fetch(\`\${base}/dashboard\`, { redirect: 'manual', headers: { accept: 'text/html' } });
const login = await fetch(\`\${base}/login\`, { method: 'POST' });
const cookie = (login.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
const page = await fetch(\`\${base}/dashboard\`, { headers: { cookie } });
const seen = { anonymous: anonymous.status, login: login.status, page: page.status, body: await page.text() };
server.close();
process.stdout.write(JSON.stringify(seen));
process.exit(0);
`;

let dir = '';
let app = '';
/** `tsc` on the quick start: its report, and the JavaScript it emits even when it reports errors. */
let compiled: Run = { code: -1, output: 'not compiled' };

beforeAll(async () => {
  dir = isolatedTemp();
  app = join(dir, 'app');
  mkdirSync(join(app, 'src'), { recursive: true });
  const pack = await run(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', dir],
    ROOT,
  );
  expect(pack.code, pack.output).toBe(0);
  const tarball = join(
    dir,
    (JSON.parse(pack.output.slice(pack.output.indexOf('['))) as { filename: string }[])[0]
      ?.filename ?? '',
  );
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module' }),
  );
  const install = await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      '--prefer-offline',
      '--prefix',
      app,
      tarball,
    ],
    app,
  );
  expect(install.code, install.output).toBe(0);
  // After the install, which would prune them: links into this repo's node_modules.
  const installed = join(app, 'node_modules', 'latchkey', 'package.json');
  const { peerDependencies = {} } = JSON.parse(readFileSync(installed, 'utf8')) as {
    peerDependencies?: Record<string, string>;
  };
  for (const name of [...TOOLS, ...Object.keys(peerDependencies)]) {
    const link = join(app, 'node_modules', name);
    if (existsSync(link)) continue;
    const target = join(ROOT, 'node_modules', name);
    expect(existsSync(target), `${name} is not in this repo's node_modules`).toBe(true);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link, 'dir');
  }
  const block = quickStart();
  const runnable = block.replace(
    "server.listen(3000, '127.0.0.1');",
    "server.listen(0, '127.0.0.1');\nexport { server };",
  );
  expect(runnable).toContain('listen(0');
  writeFileSync(join(app, 'src', 'quick-start.ts'), block);
  writeFileSync(join(app, 'src', 'quick-start-run.ts'), runnable);
  writeFileSync(join(app, 'src', 'drive.ts'), DRIVER);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      ...TSCONFIG,
      include: ['src/quick-start.ts', 'src/quick-start-run.ts', 'src/drive.ts'],
    }),
  );
  compiled = await tsc('tsconfig.json');
}, SLOW);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `tsc -p <project>` in the app, with the linked compiler. */
function tsc(project: string): Promise<Run> {
  return run(
    process.execPath,
    [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project],
    app,
  );
}

describe('the packed package, installed in a fresh strict project', () => {
  it(
    'compiles the README quick start as written',
    async () => {
      expect(compiled.output).toBe('');
      expect(compiled.code).toBe(0);
    },
    SLOW,
  );

  it(
    'runs the compiled quick start: login sets a cookie that the next request is served with',
    async () => {
      // Runs whatever type errors the compile reported: the two failures are told apart.
      const served = await run(process.execPath, [join('out', 'drive.js')], app, 60_000);
      expect(served.code, served.output).toBe(0);
      expect(JSON.parse(served.output)).toEqual({
        anonymous: 303,
        login: 204,
        page: 200,
        body: 'Hello, Ada',
      });
    },
    SLOW,
  );

  it(
    'every public entry point type-checks with only what the package declares (no undeclared driver @types)',
    async () => {
      const exports = (
        JSON.parse(readFileSync(join(app, 'node_modules', 'latchkey', 'package.json'), 'utf8')) as {
          exports: Record<string, unknown>;
        }
      ).exports;
      const entries = Object.keys(exports).map(
        (subpath, i) => `export type * as entry${i} from '${subpath.replace(/^\./, 'latchkey')}';`,
      );
      expect(entries.length).toBeGreaterThan(5);
      writeFileSync(join(app, 'src', 'entries.ts'), `${entries.join('\n')}\n`);
      writeFileSync(
        join(app, 'tsconfig.entries.json'),
        JSON.stringify({
          compilerOptions: { ...TSCONFIG.compilerOptions, noEmit: true },
          include: ['src/entries.ts'],
        }),
      );
      const checked = await tsc('tsconfig.entries.json');
      const errors = checked.output.split('\n').filter((line) => /error TS\d+/.test(line));
      expect(errors).toEqual([]);
      expect(checked.code).toBe(0);
    },
    SLOW,
  );
});
