import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../index.js';

/**
 * The server secret that signs CSRF tokens, from `path`; created (owner-only, 0600) on first start.
 * Every process serving one site must read the same file.
 */
export function loadSecret(path: string): string {
  try {
    writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ConfigError(
        `--secret-file ${path}: cannot create it (${(error as Error).message})`,
      );
    }
  }
  let secret: string;
  try {
    secret = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new ConfigError(`--secret-file ${path}: cannot read it (${(error as Error).message})`);
  }
  if (secret.length < 32) {
    throw new ConfigError(`--secret-file ${path}: holds less than 32 characters of secret`);
  }
  return secret;
}
