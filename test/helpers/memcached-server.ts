import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { promisify } from 'node:util';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

/** The memcached binary the tests start (Debian's by default). */
export const MEMCACHED_BIN = process.env.LATCHKEY_MEMCACHED_BIN ?? 'memcached';

let binaryCheck: Promise<string | null> | null = null;

/** Null when the memcached binary can be run, else why not (checked once per process). */
export function memcachedUnavailable(): Promise<string | null> {
  binaryCheck ??= run(MEMCACHED_BIN, ['-V']).then(
    () => null,
    () => `no memcached binary ("${MEMCACHED_BIN}") on PATH (Debian: apt-get install memcached)`,
  );
  return binaryCheck;
}

/** Whether something answers `version` on 127.0.0.1:`port`. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('version\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('VERSION')));
  });
}

/** A memcached of its own on a free loopback port (TCP only), for tests that fill or stop it. */
export class PrivateMemcached {
  private process: ChildProcess | null = null;

  private constructor(
    public port: number,
    private readonly extraArgs: string[],
  ) {}

  /** Starts one (another port when the one picked is taken meanwhile); `extraArgs` e.g. `['-m', '1']`. */
  static async start(extraArgs: string[] = []): Promise<PrivateMemcached> {
    let lastError: unknown = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new PrivateMemcached(await freePort(), extraArgs);
      try {
        await server.resume();
        return server;
      } catch (error) {
        lastError = error;
        await server.stop();
      }
    }
    throw lastError;
  }

  /** `host:port`, as the store takes it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts (or restarts, empty) the server on its port; resolves once it answers. */
  async resume(): Promise<void> {
    const args = ['-l', '127.0.0.1', '-p', String(this.port), '-U', '0', ...this.extraArgs];
    // memcached refuses to run as root without -u.
    if (process.getuid?.() === 0) args.push('-u', 'root');
    const child = spawn(MEMCACHED_BIN, args, { stdio: 'ignore' });
    this.process = child;
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    for (let i = 0; i < 100; i++) {
      if (exited) break;
      if (await answers(this.port)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`private memcached on port ${this.port} did not start`);
  }

  /**
   * Freezes the server (SIGSTOP): it keeps its items and the kernel still accepts connections,
   * but nothing answers, as across a network partition. {@link thaw} lets it run on.
   */
  async freeze(): Promise<void> {
    const pid = this.process?.pid;
    if (pid === undefined) return;
    this.process?.kill('SIGSTOP');
    // The signal lands when the kernel next runs each thread: until then a thread already running
    // (a loaded machine) may still answer a request sent right after kill() returned.
    for (let i = 0; i < 200 && !allThreadsStopped(pid); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  thaw(): void {
    this.process?.kill('SIGCONT');
  }

  /** Stops the server and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    await exited;
  }
}

/** Sends one raw protocol request to 127.0.0.1:`port` and gives the first reply line. */
export function rawRequest(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(2000, () => {
      socket.destroy();
      reject(new Error('memcached did not reply'));
    });
    socket.once('error', reject);
    socket.once('connect', () => socket.write(request));
    socket.on('data', (data) => {
      reply += data.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.slice(0, reply.indexOf('\r\n')));
      }
    });
  });
}

/** Stores `value` (raw bytes, flags `flags`) at `key` for a minute, behind the store's back. */
export async function rawSet(port: number, key: string, value: Buffer, flags = 0): Promise<void> {
  const head = Buffer.from(`set ${key} ${flags} 60 ${value.length}\r\n`);
  const reply = await rawRequest(port, Buffer.concat([head, value, Buffer.from('\r\n')]));
  if (reply !== 'STORED') throw new Error(`raw set of ${key}: ${reply}`);
}

/** Whether every thread of `pid` is stopped (state `T` in /proc/<pid>/task/<tid>/stat). */
function allThreadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  });
}
