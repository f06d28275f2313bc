import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../index.js';

/**
 * The server secret that signs CSRF tokens, from `path`; created (owner-only, 0600) on first start.
 * Every process serving one site must read the same file.
 */
export function loadSecret(path: string): string {
  createOnce(path);
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

/**
 * Writes a new secret to a temporary file, then links it into place: `path` appears with its
 * whole secret or not at all, so a server starting at the same moment never reads it half
 * written. A link, unlike a rename, never replaces a secret another server has already read.
 * An existing file is left alone (it may sit in a read-only directory).
 */
function createOnce(path: string): void {
  if (existsSync(path)) return;
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(temporary, `${randomBytes(32).toString('base64url')}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
    linkSync(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ConfigError(
        `--secret-file ${path}: cannot create it (${(error as Error).message})`,
      );
    }
  } finally {
    rmSync(temporary, { force: true });
  }
}
