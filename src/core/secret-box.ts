import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { ConfigError } from './errors.js';

/** `v1.<key id>.<iv>.<ciphertext and tag>`, each part base64url. */
const SEALED = /^v1\.([A-Za-z0-9_-]{11})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$/;
const TAG_BYTES = 16;

interface Key {
  readonly id: string;
  readonly bytes: Buffer;
}

/**
 * AES-256-GCM for secrets kept at rest (TOTP secrets) and for state the browser carries but must
 * neither read nor change (a login waiting for its second factor). The first key seals; every key
 * opens, so a key is rotated by putting the new one first and keeping the old one after it until
 * nothing sealed with it is left. Each box is bound to a context string (`aad`): a sealed value
 * moved to another user, factor or purpose does not open.
 */
export class SecretBox {
  private readonly keys: readonly Key[];

  /** `secrets`: at least one, each at least 32 characters (or bytes) of secret. */
  constructor(secrets: readonly (string | Buffer)[], option = 'secretKey') {
    if (secrets.length === 0) throw new ConfigError(`${option}: at least one key`);
    this.keys = secrets.map((secret) => {
      if (secret.length < 32) {
        throw new ConfigError(`${option}: each key needs at least 32 characters (or bytes)`);
      }
      // Derived, so the same server secret can also sign cookies without the two ever colliding.
      const bytes = Buffer.from(hkdfSync('sha256', secret, '', 'latchkey secret box v1', 32));
      const id = createHash('sha256').update(bytes).digest('base64url').slice(0, 11);
      return { id, bytes };
    });
  }

  /** `plaintext` sealed with the first key, for the context `aad`. */
  seal(plaintext: string, aad: string): string {
    const key = this.keys[0] as Key;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.bytes, iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([
      cipher.update(plaintext, 'utf8'),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    return `v1.${key.id}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** The plaintext, or null when `sealed` is malformed, tampered, for another context or key. */
  open(sealed: string, aad: string): string | null {
    const match = SEALED.exec(sealed);
    if (!match) return null;
    const [, keyId, iv = '', body = ''] = match;
    const key = this.keys.find((candidate) => candidate.id === keyId);
    if (!key) return null;
    const bytes = Buffer.from(body, 'base64url');
    if (bytes.length < TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(aad));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      const text = decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES));
      return Buffer.concat([text, decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
