/**
 * Shared plumbing for the security suite: a `latchkey serve` child process in its own temp dir,
 * a browser-like client with a cookie jar, CSRF token scraping, login helpers and read-only
 * access to the SQLite store. Every test in test/security talks to a running server over HTTP.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { runCli, type ServeProcess, startServe, tempDir } from '../helpers/cli.js';

export const SESSION = '__Host-session';
export const REMEMBER = '__Host-remember';
export const CSRF_COOKIE = '__Host-csrf';
/** 30 days in seconds: the longest a remember-me cookie may live. */
export const THIRTY_DAYS = 30 * 24 * 3600;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A password no common-password list holds, unique per call. */
export function strongPassword(label = 'pw'): string {
  return `${label}-${randomBytes(12).toString('base64url')}-Zq`;
}

/** A username unique per call (letters and digits only). */
export function uniqueName(prefix = 'user'): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

let ipCounter = 0;
/** A fresh client address for `X-Forwarded-For` (the servers trust 127.0.0.1 as a proxy). */
export function freshIp(): string {
  ipCounter++;
  const salt = randomBytes(1)[0] ?? 0;
  return `10.${(ipCounter >> 8) & 255}.${ipCounter & 255}.${salt}`;
}

// ---------------------------------------------------------------------------------------------
// Set-Cookie parsing
// ---------------------------------------------------------------------------------------------

export interface SetCookie {
  readonly raw: string;
  readonly name: string;
  readonly value: string;
  /** Attribute names lower-cased; flag attributes map to ''. */
  readonly attributes: ReadonlyMap<string, string>;
}

export function parseSetCookie(raw: string): SetCookie {
  const [pair = '', ...rest] = raw.split(';');
  const eq = pair.indexOf('=');
  const name = (eq === -1 ? pair : pair.slice(0, eq)).trim();
  const value = eq === -1 ? '' : pair.slice(eq + 1).trim();
  const attributes = new Map<string, string>();
  for (const part of rest) {
    const at = part.indexOf('=');
    const key = (at === -1 ? part : part.slice(0, at)).trim().toLowerCase();
    if (key === '') continue;
    attributes.set(key, at === -1 ? '' : part.slice(at + 1).trim());
  }
  return { raw, name, value, attributes };
}

/** True when a Set-Cookie tells the browser to drop the cookie. */
export function isClearing(cookie: SetCookie): boolean {
  const maxAge = cookie.attributes.get('max-age');
  if (maxAge !== undefined && Number(maxAge) <= 0) return true;
  const expires = cookie.attributes.get('expires');
  if (expires !== undefined && Date.parse(expires) <= Date.now()) return true;
  return false;
}

/** Asserts the `__Host-` prefix rules and the attributes every latchkey cookie must carry. */
export function expectHostCookie(cookie: SetCookie): void {
  expect(cookie.name.startsWith('__Host-'), cookie.raw).toBe(true);
  expect(cookie.attributes.has('secure'), `${cookie.raw}: Secure`).toBe(true);
  expect(cookie.attributes.get('path'), `${cookie.raw}: Path=/`).toBe('/');
  expect(cookie.attributes.has('domain'), `${cookie.raw}: no Domain`).toBe(false);
  expect(cookie.attributes.has('httponly'), `${cookie.raw}: HttpOnly`).toBe(true);
  expect(cookie.attributes.get('samesite')?.toLowerCase(), `${cookie.raw}: SameSite`).toBe(
    'strict',
  );
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/** A response read to the end. */
export interface Res {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  readonly setCookies: readonly SetCookie[];
  json<T = Record<string, unknown>>(): T;
  /** The Set-Cookie for `name`, if any. */
  cookie(name: string): SetCookie | undefined;
  /** All header values joined, for "never echoed" checks. */
  everything(): string;
}

async function readRes(response: Response): Promise<Res> {
  const body = await response.text();
  const setCookies = response.headers.getSetCookie().map(parseSetCookie);
  return {
    status: response.status,
    headers: response.headers,
    body,
    setCookies,
    json: <T>() => JSON.parse(body) as T,
    cookie: (name) => setCookies.find((cookie) => cookie.name === name),
    everything: () => `${[...response.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${body}`,
  };
}

/** The `Vary` header's field names, lower-cased. */
export function varyOf(res: Res): string[] {
  return (res.headers.get('vary') ?? '')
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter(Boolean);
}

/** The value of the hidden `csrf` field of the first form in `html` (optionally the form posting to `action`). */
export function csrfFrom(html: string, action?: string): string {
  let scope = html;
  if (action !== undefined) {
    const forms = html.match(/<form\b[\s\S]*?<\/form>/gi) ?? [];
    const form = forms.find((f) => new RegExp(`action="${escapeRegExp(action)}"`).test(f));
    if (!form) throw new Error(`no form posting to ${action}`);
    scope = form;
  }
  const input = (scope.match(/<input\b[^>]*>/gi) ?? []).find((tag) => /name="csrf"/.test(tag));
  const value = input ? /value="([^"]*)"/.exec(input)?.[1] : undefined;
  if (!value) throw new Error(`no csrf field in: ${scope.slice(0, 300)}`);
  return value;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

export interface SecurityServer {
  readonly url: string;
  /** `http://127.0.0.1:PORT`, the exact origin unsafe requests must name. */
  readonly origin: string;
  readonly port: number;
  readonly dir: string;
  readonly db: string;
  readonly auditLog: string;
  readonly secretFile: string;
  readonly process: ServeProcess;
  /** Everything the server wrote to stdout and stderr. */
  output(): string;
  /** The audit log's JSON lines so far. */
  audit(): Array<Record<string, unknown>>;
  /** A new browser with an empty jar and its own client address. */
  browser(ip?: string): Browser;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Extra `latchkey serve` flags. */
  readonly args?: readonly string[];
  /** Whether to trust 127.0.0.1 as a proxy so each browser can have its own address (default true). */
  readonly trustProxy?: boolean;
  /** Users to create with the CLI before the server starts: name → password. */
  readonly users?: Readonly<Record<string, string>>;
}

/**
 * Starts `latchkey serve` on port 0 in a fresh temp dir, with `--db`, `--secret-file` and
 * `--audit-log` inside it and `--allow-signup`.
 */
export async function startServer(options: ServerOptions = {}): Promise<SecurityServer> {
  const temp = tempDir();
  const secretFile = join(temp.dir, 'secret');
  writeFileSync(secretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const auditLog = join(temp.dir, 'audit.log');
  for (const [name, password] of Object.entries(options.users ?? {})) {
    await cliAddUser(temp.db, name, password);
  }
  const args = [
    '--db',
    temp.db,
    '--secret-file',
    secretFile,
    '--audit-log',
    auditLog,
    '--allow-signup',
    ...(options.trustProxy === false ? [] : ['--trust-proxy', '127.0.0.1']),
    ...(options.args ?? []),
  ];
  const serve = await startServe(args);
  const url = new URL(serve.url);
  const origin = `http://127.0.0.1:${url.port}`;
  const server: SecurityServer = {
    url: origin,
    origin,
    port: Number(url.port),
    dir: temp.dir,
    db: temp.db,
    auditLog,
    secretFile,
    process: serve,
    output: () => serve.output(),
    audit: () => readAudit(auditLog),
    browser: (ip?: string) => new Browser(server, ip ?? freshIp()),
    stop: async () => {
      await serve.stop();
      temp.remove();
    },
  };
  return server;
}

function readAudit(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** `latchkey user add NAME --password-stdin --db FILE`. */
export async function cliAddUser(db: string, name: string, password: string): Promise<void> {
  const result = await runCli(['user', 'add', name, '--password-stdin', '--db', db], {
    input: `${password}\n`,
  });
  if (result.code !== 0) throw new Error(`user add failed: ${result.stderr}`);
}

/** Any other CLI command against the server's database. */
export async function cli(server: SecurityServer, args: readonly string[]): Promise<void> {
  const result = await runCli([...args, '--db', server.db]);
  if (result.code !== 0) throw new Error(`latchkey ${args.join(' ')} failed: ${result.stderr}`);
}

// ---------------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------------

export interface RequestOptions {
  readonly headers?: Record<string, string>;
  /** urlencoded form fields. */
  readonly form?: Record<string, string>;
  /** A JSON body (sent as application/json). */
  readonly json?: unknown;
  /** A raw body (give the content-type in headers). */
  readonly body?: string | Buffer;
  /**
   * `Origin` for unsafe methods: the server's origin by default, a string to send that instead,
   * null for none.
   */
  readonly origin?: string | null;
  /** Send this Cookie header instead of the jar's (null: no Cookie header). */
  readonly cookie?: string | null;
  /** Keep the jar unchanged by this response (default: only when `cookie` is given). */
  readonly keepJar?: boolean;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A client with its own cookie jar and client address (sent as X-Forwarded-For). */
export class Browser {
  readonly jar = new Map<string, string>();

  constructor(
    readonly server: SecurityServer,
    readonly ip: string,
  ) {}

  cookieHeader(): string | null {
    if (this.jar.size === 0) return null;
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  get session(): string | undefined {
    return this.jar.get(SESSION);
  }

  get remember(): string | undefined {
    return this.jar.get(REMEMBER);
  }

  /** A copy of this browser (same jar, same address), as a thief or a second tab would hold. */
  clone(): Browser {
    const copy = new Browser(this.server, this.ip);
    for (const [name, value] of this.jar) copy.jar.set(name, value);
    return copy;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<Res> {
    const headers: Record<string, string> = { 'x-forwarded-for': this.ip };
    if (UNSAFE.has(method)) {
      const origin = options.origin === undefined ? this.server.origin : options.origin;
      if (origin !== null) headers.origin = origin;
    }
    const cookie = options.cookie === undefined ? this.cookieHeader() : options.cookie;
    if (cookie !== null) headers.cookie = cookie;
    let body: string | Buffer | undefined;
    if (options.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.accept = 'text/html';
      headers['sec-fetch-mode'] = 'navigate';
      body = new URLSearchParams(options.form).toString();
    } else if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      headers.accept = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      body = options.body;
    }
    Object.assign(headers, options.headers);
    const response = await fetch(`${this.server.url}${path}`, {
      method,
      headers,
      body,
      redirect: 'manual',
    });
    const res = await readRes(response);
    // A request with a Cookie header of its own (a replayed copy) leaves this jar alone.
    const keep = options.keepJar ?? options.cookie !== undefined;
    if (!keep) this.absorb(res);
    return res;
  }

  /** Applies a response's `Clear-Site-Data: "cookies"` and Set-Cookie headers to the jar, as a browser does. */
  absorb(res: Res): void {
    if (/"(cookies|\*)"/.test(res.headers.get('clear-site-data') ?? '')) this.jar.clear();
    for (const cookie of res.setCookies) {
      if (cookie.value === '' || isClearing(cookie)) this.jar.delete(cookie.name);
      else this.jar.set(cookie.name, cookie.value);
    }
  }

  /** An HTML page (Accept: text/html, a navigation). */
  page(path: string, options: RequestOptions = {}): Promise<Res> {
    return this.request('GET', path, {
      ...options,
      headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', ...options.headers },
    });
  }

  /** `GET /api/me`. */
  me(options: RequestOptions = {}): Promise<Res> {
    return this.request('GET', '/api/me', {
      ...options,
      headers: { accept: 'application/json', ...options.headers },
    });
  }

  /** The session the server sees for this browser, or null when `/api/me` is not 200. */
  async whoami(): Promise<{ user: Record<string, unknown>; session: SessionView } | null> {
    const res = await this.me();
    return res.status === 200
      ? res.json<{ user: Record<string, unknown>; session: SessionView }>()
      : null;
  }

  postJson(path: string, json: unknown, options: RequestOptions = {}): Promise<Res> {
    return this.request('POST', path, { ...options, json });
  }

  postForm(path: string, form: Record<string, string>, options: RequestOptions = {}): Promise<Res> {
    return this.request('POST', path, { ...options, form });
  }

  /** The CSRF token in the form posting to `action` on `page` (default: the dashboard). */
  async csrf(page = '/dashboard', action?: string): Promise<string> {
    const res = await this.page(page);
    expect(res.status, `GET ${page} for a CSRF token`).toBe(200);
    return csrfFrom(res.body, action);
  }

  /** `POST /api/login`. */
  loginApi(username: string, password: string, remember?: boolean): Promise<Res> {
    return this.postJson('/api/login', {
      username,
      password,
      ...(remember === undefined ? {} : { remember }),
    });
  }

  /** GET /login for the pre-login token, then POST /login. */
  async loginForm(
    username: string,
    password: string,
    options: { remember?: boolean; next?: string } = {},
  ): Promise<Res> {
    // A signed-in browser is redirected away from GET /login: fetch the form as if from a tab
    // without the session cookie (keeping any __Host-csrf cookie), then post with everything.
    const others = [...this.jar].filter(([name]) => name !== SESSION);
    const page = await this.page('/login', {
      cookie: others.length > 0 ? others.map(([n, v]) => `${n}=${v}`).join('; ') : null,
      keepJar: false,
    });
    expect(page.status, 'GET /login').toBe(200);
    const csrf = csrfFrom(page.body, '/login');
    return this.postForm('/login', {
      username,
      password,
      csrf,
      ...(options.remember ? { remember: 'on' } : {}),
      ...(options.next ? { next: options.next } : {}),
    });
  }

  /** Logs in over the API and fails the test unless it worked. */
  async login(username: string, password: string, remember?: boolean): Promise<Res> {
    const res = await this.loginApi(username, password, remember);
    expect(res.status, `login ${username}: ${res.body}`).toBe(200);
    expect(this.session, 'session cookie after login').toBeTruthy();
    return res;
  }

  /** `POST /api/signup` and fails the test unless it worked. */
  async signup(username: string, password: string): Promise<Res> {
    const res = await this.postJson('/api/signup', { username, password });
    expect([200, 201], `signup ${username}: ${res.status} ${res.body}`).toContain(res.status);
    return res;
  }
}

export interface SessionView {
  readonly id: string;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  readonly authenticatedAt: string;
  readonly idleExpiresAt: string;
  readonly absoluteExpiresAt: string;
}

/** Signs up a new account through a throwaway browser; gives its name and password. */
export async function newAccount(
  server: SecurityServer,
  prefix = 'user',
): Promise<{ username: string; password: string }> {
  const username = uniqueName(prefix);
  const password = strongPassword();
  await server.browser().signup(username, password);
  return { username, password };
}

/** A browser logged in as a new account. */
export async function loggedIn(
  server: SecurityServer,
  options: { remember?: boolean; account?: { username: string; password: string } } = {},
): Promise<{ browser: Browser; username: string; password: string }> {
  const account = options.account ?? (await newAccount(server));
  const browser = server.browser();
  await browser.login(account.username, account.password, options.remember);
  return { browser, ...account };
}

// ---------------------------------------------------------------------------------------------
// The store, read-only
// ---------------------------------------------------------------------------------------------

/** Runs `fn` on a read-only connection to the server's SQLite file. */
export function inspect<T>(server: SecurityServer, fn: (db: Database.Database) => T): T {
  const db = new Database(server.db, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export function sessionRow(
  server: SecurityServer,
  id: string,
): Record<string, unknown> | undefined {
  return inspect(
    server,
    (db) =>
      db.prepare('SELECT * FROM latchkey_sessions WHERE id = ?').get(id) as
        | Record<string, unknown>
        | undefined,
  );
}

export function userRow(
  server: SecurityServer,
  username: string,
): Record<string, unknown> | undefined {
  return inspect(
    server,
    (db) =>
      db.prepare('SELECT * FROM latchkey_users WHERE username = ?').get(username) as
        | Record<string, unknown>
        | undefined,
  );
}

/** The public session id of a raw token (SHA-256, base64url, as README's design notes say). */
export function sessionIdOf(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for header bytes fetch refuses to send
// ---------------------------------------------------------------------------------------------

export interface RawResponse {
  /** 0 when the server closed the connection without an answer. */
  readonly status: number;
  readonly head: string;
  readonly body: string;
  readonly text: string;
}

/** Writes `request` (a whole HTTP/1.1 message) on a fresh socket and reads until close. */
export function rawRequest(server: SecurityServer, request: Buffer | string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('raw request timed out')), 10_000);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      if ((error as NodeJS.ErrnoException).code === 'ECONNRESET') finish();
      else reject(error);
    });
    socket.on('end', finish);
    socket.on('close', finish);
    let done = false;
    function finish() {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split === -1 ? text : text.slice(0, split);
      const body = split === -1 ? '' : text.slice(split + 4);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body, text });
    }
    socket.write(request);
  });
}

/** A GET with arbitrary header bytes, `Connection: close`. */
export function rawGet(
  server: SecurityServer,
  path: string,
  headerLines: ReadonlyArray<Buffer | string>,
): Promise<RawResponse> {
  const parts: Buffer[] = [
    Buffer.from(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: close\r\nAccept: application/json\r\n`,
      'latin1',
    ),
  ];
  for (const line of headerLines) {
    parts.push(typeof line === 'string' ? Buffer.from(line, 'utf8') : line);
    parts.push(Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('\r\n', 'latin1'));
  return rawRequest(server, Buffer.concat(parts));
}

/** Median of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
