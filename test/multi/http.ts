import { request } from 'node:http';
import { runCli, type ServeProcess, startServe } from '../helpers/cli.js';

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export interface CallOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /**
   * The loopback address to connect from (any of 127.0.0.0/8). Spreading logins over addresses
   * plays many clients, so a per-IP login throttle does not slow a 100-login test down.
   */
  readonly from?: string;
}

/** One HTTP request on a fresh connection (no keep-alive: servers come and go in these tests). */
export function call(url: string, options: CallOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        headers: {
          ...options.headers,
          ...(options.body === undefined
            ? {}
            : { 'content-length': String(Buffer.byteLength(options.body)) }),
        },
        agent: false,
        ...(options.from ? { localAddress: options.from } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** `scheme://host:port` of a server URL: what a browser sends as `Origin`. */
export function originOf(url: string): string {
  return new URL(url).origin;
}

/** The `name=value` part of the session cookie an answer sets. */
export function sessionCookie(answer: Answer): string {
  const setCookie = answer.headers['set-cookie'];
  const first = Array.isArray(setCookie) ? setCookie[0] : setCookie;
  if (!first) throw new Error(`no Set-Cookie (status ${answer.status}): ${answer.body}`);
  return first.split(';')[0] as string;
}

export function apiLogin(
  server: string,
  username: string,
  password: string,
  from?: string,
): Promise<Answer> {
  return call(`${server}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: originOf(server) },
    body: JSON.stringify({ username, password }),
    ...(from ? { from } : {}),
  });
}

export function apiMe(server: string, cookie: string): Promise<Answer> {
  return call(`${server}/api/me`, { headers: { cookie, accept: 'application/json' } });
}

export function apiLogout(server: string, cookie: string): Promise<Answer> {
  return call(`${server}/api/logout`, {
    method: 'POST',
    headers: { cookie, origin: originOf(server) },
  });
}

/** A page load as a browser makes it. */
export function page(url: string, cookie: string): Promise<Answer> {
  return call(url, {
    headers: {
      cookie,
      accept: 'text/html',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-site': 'none',
    },
  });
}

/** `latchkey user add NAME --password-stdin --store URL`, failing loudly if it does not work. */
export async function addStoreUser(store: string, name: string, password: string): Promise<void> {
  const result = await runCli(['user', 'add', name, '--password-stdin', '--store', store], {
    input: `${password}\n`,
  });
  if (result.code !== 0) throw new Error(`user add failed (${result.code}): ${result.stderr}`);
}

/** Starts `latchkey serve` processes; `stopAll` stops every one started so far. */
export class Servers {
  private readonly running: ServeProcess[] = [];

  async start(args: readonly string[]): Promise<ServeProcess> {
    const server = await startServe(args);
    this.running.push(server);
    return server;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.running.splice(0).map((server) => server.stop()));
  }
}

/** Why a required service is missing: skips the test, or fails it under LATCHKEY_REQUIRE_SERVICES=1. */
export function skipOrFail(reason: string | null, context: { skip(): void }): void {
  if (!reason) return;
  if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') {
    throw new Error(`required (LATCHKEY_REQUIRE_SERVICES=1) but ${reason}`);
  }
  console.warn(`skipping: ${reason}`);
  context.skip();
}
