import { ConfigError } from './errors.js';

/** Where passkeys may be used: the relying party (RP) id and the origins of its pages. */
export interface PasskeyOptions {
  /** The registrable domain passkeys are bound to (`example.com`), or `localhost`. */
  readonly rpId: string;
  /** The name authenticators show. Default: `siteName`, else `"latchkey"`. */
  readonly rpName?: string;
  /**
   * Every origin a ceremony may come from (`https://example.com`, `https://login.example.com`):
   * each on `rpId` or a subdomain of it, https (plain http only for localhost).
   */
  readonly origins: readonly string[];
}

/** The RP id and origins, checked: a {@link ConfigError} for anything a browser would refuse. */
export function checkPasskeyOptions(options: PasskeyOptions): {
  rpId: string;
  origins: string[];
} {
  const rpId = typeof options?.rpId === 'string' ? options.rpId.toLowerCase() : '';
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(rpId)) {
    throw new ConfigError('secondFactor.passkeys.rpId: a domain name such as "example.com"');
  }
  if (!Array.isArray(options.origins) || options.origins.length === 0) {
    throw new ConfigError('secondFactor.passkeys.origins: at least one origin');
  }
  if (options.rpName !== undefined && typeof options.rpName !== 'string') {
    throw new ConfigError('secondFactor.passkeys.rpName: a string');
  }
  const origins = options.origins.map((origin: unknown) => {
    let url: URL | null = null;
    try {
      url = typeof origin === 'string' ? new URL(origin) : null;
    } catch {}
    const problem = `secondFactor.passkeys.origins: ${JSON.stringify(origin)}`;
    if (!url || url.origin !== String(origin).replace(/\/$/, '')) {
      throw new ConfigError(`${problem} is not an origin (scheme://host[:port], no path)`);
    }
    const host = url.hostname;
    if (host !== rpId && !host.endsWith(`.${rpId}`)) {
      throw new ConfigError(`${problem} is not on the rpId "${rpId}" or a subdomain of it`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && host === 'localhost')) {
      throw new ConfigError(`${problem}: browsers allow passkeys over https only (or localhost)`);
    }
    return url.origin;
  });
  return { rpId, origins };
}
