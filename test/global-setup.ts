import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The CSRF secret file servers share unless a test picks its own (see test/helpers/cli.ts). */
    testSecretFile: string;
  }
}

/**
 * Child-process tests run the built CLI and stores, so build once before any test runs; and write
 * the shared secret once, so servers starting in parallel never race to create it.
 */
export default function setup(project: TestProject): () => void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-secret-'));
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  project.provide('testSecretFile', secretFile);
  return () => rmSync(dir, { recursive: true, force: true });
}
