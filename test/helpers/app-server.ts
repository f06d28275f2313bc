/** `latchkey serve`'s app in this process, on a free loopback port, for tests over real HTTP. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CsrfTokens } from '../../src/index.js';
import { type AppOptions, createApp } from '../../src/server/app.js';

export interface AppServer {
  /** `http://<host>:<port>`, the origin unsafe requests must name. */
  readonly base: string;
  close(): Promise<void>;
}

/** The options every in-process test app shares; `latchkey` and `store` are each test's. */
const DEFAULTS = {
  allowSignup: false,
  trustedProxies: new Set<string>(),
  csrf: new CsrfTokens('a test secret of at least thirty-two bytes'),
  https: false,
  loopbackOnly: true,
} as const;

/**
 * Listens first, then builds the app: `options` is given the origin, which passkey settings
 * need. `host` is `localhost` for WebAuthn (browsers allow it over http on localhost only).
 */
export async function serveApp(
  options: (base: string) => Pick<AppOptions, 'latchkey' | 'store'> & Partial<AppOptions>,
  host: '127.0.0.1' | 'localhost' = '127.0.0.1',
): Promise<AppServer> {
  let app: ReturnType<typeof createApp> | null = null;
  const server = createServer((req, res) => app?.(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://${host}:${(server.address() as AddressInfo).port}`;
  app = createApp({ ...DEFAULTS, ...options(base) });
  return { base, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A browser's cookie jar, kept by hand: fetch keeps none. */
export class Jar {
  private readonly cookies = new Map<string, string>();

  /** Stores the response's cookies (a `Max-Age=0` one removes its name), and gives it back. */
  take(response: Response): Response {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at);
      if (/max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(at + 1));
    }
    return response;
  }

  get header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  set(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  has(name: string): boolean {
    return this.cookies.has(name);
  }

  drop(name: string): void {
    this.cookies.delete(name);
  }
}
