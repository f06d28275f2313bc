/** The runner's side of a bench server child: fork, wait for ready, and ask it things over IPC. */
import { fork } from 'node:child_process';

const SERVER = new URL('./server.mjs', import.meta.url);

/**
 * @typedef {{ port: number, cookie: string, path?: string, pid: number, ask(type: string): Promise<any>, stop(): Promise<void> }} ServerChild
 */

/**
 * Starts `bench/server.mjs <module> <options>`. Resolves with the child once it is listening, or
 * rejects with `{ skipped: true }` when the case cannot run here.
 * @param {string} module
 * @param {object} options
 * @param {{ env?: NodeJS.ProcessEnv, execArgv?: string[], execPath?: string }} [spawn] `execPath`
 *   runs the server through another program (bench/ladder.mjs: valgrind, with node in `execArgv`)
 * @returns {Promise<ServerChild>}
 */
export function startServer(module, options, spawn = {}) {
  const child = fork(SERVER, [module, JSON.stringify(options)], {
    env: { ...process.env, ...spawn.env },
    execArgv: spawn.execArgv ?? [],
    ...(spawn.execPath ? { execPath: spawn.execPath } : {}),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  /** @type {Map<number, (value: any) => void>} */
  const pending = new Map();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${module}: not ready after 60 s`)), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`${module}: exited with ${code}`), { skipped: false }));
    });
    child.on('message', (/** @type {any} */ message) => {
      if (message.id !== undefined) {
        pending.get(message.id)?.(message);
        pending.delete(message.id);
        return;
      }
      clearTimeout(timer);
      if (message.type !== 'ready') {
        reject(Object.assign(new Error(message.message), { skipped: message.type === 'skip' }));
        return;
      }
      resolve({
        port: message.port,
        cookie: message.cookie,
        pid: /** @type {number} */ (child.pid),
        ask(type) {
          const id = nextId++;
          return new Promise((done) => {
            pending.set(id, done);
            child.send({ id, type });
          });
        },
        async stop() {
          const exited = new Promise((done) => child.once('exit', done));
          child.send({ id: 0, type: 'stop' });
          const timeout = setTimeout(() => child.kill(), 5000);
          await exited;
          clearTimeout(timeout);
        },
      });
    });
  });
}

/**
 * Runs a script under bench/ to completion and gives the one message it sends.
 * @param {string} script path relative to bench/
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv, execArgv?: string[] }} [spawn]
 * @returns {Promise<any>}
 */
export function runScript(script, args, spawn = {}) {
  const child = fork(new URL(script, import.meta.url), args, {
    env: { ...process.env, ...spawn.env },
    execArgv: spawn.execArgv ?? [],
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  let result;
  child.on('message', (message) => {
    result = message;
  });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      if (result !== undefined) resolve(result);
      else {
        const lastLine = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
        reject(new Error(`${script} exited with ${code}: ${lastLine}`));
      }
    });
  });
}
