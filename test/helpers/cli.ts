import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, inject } from 'vitest';

/** The built CLI (test/global-setup.ts builds dist/ before any test runs). */
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `latchkey ...args` to completion, with `input` on stdin. */
export function runCli(
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...cleanEnv(), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** `latchkey user add <name> --password-stdin`, failing the test if it does not work. */
export async function addUser(db: string, name: string, password: string): Promise<void> {
  const result = await runCli(['user', 'add', name, '--password-stdin', '--db', db], {
    input: `${password}\n`,
  });
  if (result.code !== 0) throw new Error(`user add failed: ${result.stderr}`);
}

export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `latchkey serve --port 0 ...args` and waits for the line that gives its URL. */
export function startServe(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
    // Tests share one CSRF secret (written by test/global-setup.ts) unless they pick their own.
    env: { ...cleanEnv(), LATCHKEY_SECRET_FILE: inject('testSecretFile'), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (!url) return;
      clearTimeout(timer);
      resolve({
        url,
        child,
        output: () => output,
        stop: async () => {
          if (child.exitCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${output}`));
    });
  });
}

/** A fresh directory for a test's SQLite files; remove it with the returned function. */
export function tempDir(): { dir: string; db: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-test-'));
  return {
    dir,
    db: join(dir, 'latchkey.db'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The parent's environment without LATCHKEY_* settings, so tests see the defaults. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('LATCHKEY_')),
  );
}

/**
 * For a test file: `startServe` whose servers all stop after each test, so a failing test never
 * leaves a process behind.
 */
export function useServe(): typeof startServe {
  let running: ServeProcess[] = [];
  afterEach(async () => {
    await Promise.all(running.map((server) => server.stop()));
    running = [];
  });
  return async (args, options) => {
    const server = await startServe(args, options);
    running.push(server);
    return server;
  };
}
