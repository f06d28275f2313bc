import { execFileSync } from 'node:child_process';

/** Child-process tests run the built CLI and stores, so build once before any test runs. */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
