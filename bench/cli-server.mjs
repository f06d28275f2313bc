/**
 * A bench server that is the real `latchkey serve`: the CLI in its own process (with
 * `--workers N`, a node:cluster primary and its workers), on a fresh SQLite file, its log on
 * standard output written to a file as a service manager would. It gives the runner the same
 * handle as child.mjs' `startServer`: the requests it handled are its access lines (with the
 * access log off: none, and the runner takes the load generator's count), its CPU is read from
 * /proc for the process and every worker, and its store calls are not counted.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;
const USERNAME = 'bench';
const PASSWORD = 'correct horse battery staple';
/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * Starts `latchkey serve <args>` on a free loopback port, signs in once through `POST /api/login`
 * and resolves once it serves.
 * @param {string[]} args extra `serve` arguments
 * @param {{ execArgv?: string[] }} [spawnOptions] node flags for the server (the profiler's)
 * @returns {Promise<import('./child.mjs').ServerChild>}
 */
export async function startCli(args, spawnOptions = {}) {
  const workersAt = args.indexOf('--workers');
  const workers = workersAt < 0 ? 1 : Number(args[workersAt + 1]);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-serve-'));
  execFileSync(process.execPath, [CLI, 'user', 'add', USERNAME, '--password-stdin'], {
    cwd: dir,
    input: `${PASSWORD}\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const port = await freePort();
  const logFile = join(dir, 'stdout.log');
  const child = spawn(
    process.execPath,
    [
      ...(spawnOptions.execArgv ?? []),
      CLI,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      ...args,
    ],
    { cwd: dir, stdio: ['ignore', openSync(logFile, 'w'), 'inherit'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const log = () => readFileSync(logFile, 'utf8');
  /** Access lines written since byte `from` of the log, and where the log ends now. */
  const accessLinesSince = (/** @type {number} */ from) => {
    const end = statSync(logFile).size;
    const bytes = Buffer.alloc(end - from);
    const fd = openSync(logFile, 'r');
    readSync(fd, bytes, 0, bytes.length, from);
    closeSync(fd);
    return { lines: bytes.toString('utf8').split('"msg":"request"').length - 1, end };
  };
  const origin = `http://127.0.0.1:${port}`;
  await until(() => answers(`${origin}/readyz`), exited, 'ready');
  if (workers > 1) {
    // Every worker listens before the primary says so (a worker's own line carries its id).
    const primary = (/** @type {string} */ line) =>
      line.includes('"msg":"latchkey listening on') && !line.includes('"worker":');
    await until(async () => log().split('\n').some(primary), exited, 'listening on every worker');
  }
  const cookie = await logIn(origin);
  // The login's own access line (give the asynchronous log a moment to write it).
  await new Promise((resolve) => setTimeout(resolve, 200));
  const logsRequests = accessLinesSince(0).lines > 0;

  let cpuStart = cpuTicks(child.pid);
  let logStart = statSync(logFile).size;
  return {
    port,
    cookie,
    path: '/api/me',
    ask: async (type) => {
      if (type === 'reset') {
        cpuStart = cpuTicks(child.pid);
        logStart = statSync(logFile).size;
        return {};
      }
      // The access log is asynchronous: give its last lines a moment to reach the file.
      await new Promise((resolve) => setTimeout(resolve, 200));
      // With the access log off, nothing counts requests here: the runner takes the load's count.
      return {
        handled: logsRequests ? accessLinesSince(logStart).lines : null,
        cpuMicros: ((cpuTicks(child.pid) - cpuStart) * 1e6) / TICKS_PER_SECOND,
        store: null,
      };
    },
    async stop() {
      child.kill('SIGTERM');
      const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timeout);
    },
  };
}

/** @param {string} origin */
async function logIn(origin) {
  const response = await fetch(`${origin}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin },
    body: JSON.stringify({ username: USERNAME, password: PASSWORD }),
  });
  const pairs = response.headers.getSetCookie().map((line) => line.split(';')[0]);
  if (response.status !== 200 || pairs.length === 0) {
    throw new Error(`latchkey serve: login answered ${response.status}`);
  }
  return pairs.join('; ');
}

/** User plus system CPU ticks of `pid` and of its children (the cluster's workers). */
function cpuTicks(/** @type {number | undefined} */ pid) {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command name (which may hold spaces) in parentheses: state ppid … utime stime.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(entry) === pid || Number(fields[1]) === pid) {
      ticks += Number(fields[11]) + Number(fields[12]);
    }
  }
  return ticks;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** Whether `url` answers 200. */
async function answers(/** @type {string} */ url) {
  try {
    return (await fetch(url)).status === 200;
  } catch {
    return false;
  }
}

/**
 * @param {() => Promise<boolean>} ready
 * @param {Promise<unknown>} exited
 * @param {string} what
 */
async function until(ready, exited, what) {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 30_000;
  while (!(await ready())) {
    if (gone) throw new Error(`latchkey serve exited before ${what}`);
    if (Date.now() > deadline) throw new Error(`latchkey serve: not ${what} after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
