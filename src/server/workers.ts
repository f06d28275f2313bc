import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { createLogger, errorFields, stdoutDestination } from './logs.js';
import { METRICS_ANSWER, METRICS_REQUEST, type MetricsAnswer } from './metrics.js';
import { loadSecret } from './secret.js';
import { SHUTDOWN_GRACE_MS, type WorkerRole } from './serve.js';
import { workersOf } from './setting-kinds.js';
import type { Settings } from './settings.js';

/**
 * `latchkey serve --workers N`: the primary process of a `node:cluster`. It opens no store and
 * serves nothing; it forks N workers (each re-runs the CLI with the same arguments and is a whole
 * server with its own store connections, sharing the port), restarts one that dies, answers the
 * workers' `/metrics` requests with every worker's sum, and on SIGTERM or SIGINT stops them all.
 */

/** Set in the environment of the one worker that runs the expiry sweeps. */
const SWEEPER_ENV = 'LATCHKEY_CLUSTER_SWEEPER';
/** A worker tells the primary it has opened its stores and is listening. */
const READY = 'latchkey:worker-ready';

/**
 * A worker that dies within {@link CRASH_WINDOW_MS} of its fork died at once; this many in a row
 * (no longer-lived worker dying in between) is a crash loop, and the primary gives up. Counted
 * per fork rather than per second, so a slow start-up cannot hide a loop or fake one.
 */
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 10_000;
/** The wait before a restart, doubled for each death in a row, so a crash loop does not spin. */
const RESTART_DELAY_MS = 100;
/** Workers still running this long after a stop began are killed. */
const STOP_DEADLINE_MS = SHUTDOWN_GRACE_MS + 5000;

/** Exit codes, as the CLI's: 1 failed (workers kept dying). */
const FAILED = 1;

/** The role of this process when it is a cluster worker, else null. */
export function workerRole(): WorkerRole | null {
  if (!cluster.isWorker || !cluster.worker) return null;
  return { id: cluster.worker.id, sweeps: process.env[SWEEPER_ENV] === '1' };
}

/** From a worker: its server is up (at `url`). */
export function reportReady(url: string): void {
  process.send?.({ type: READY, url });
}

/** From a worker that is done: lets the process exit (the IPC channel would hold it open). */
export function leaveCluster(): void {
  if (cluster.isWorker && cluster.worker?.isConnected()) cluster.worker.disconnect();
}

/** Whether `settings` ask for more than one process. */
export function wantsCluster(settings: Settings): boolean {
  return workersOf(settings.workers) > 1;
}

/**
 * Runs the primary until SIGTERM or SIGINT (0 once every worker has stopped), a worker failing
 * to start (its exit code), or workers dying in a loop (1). Throws a ConfigError for a bad
 * secret file, checked (and created) once here so workers never race to create it.
 */
export async function runPrimary(settings: Settings): Promise<number> {
  loadSecret(settings.secretFile);
  const count = workersOf(settings.workers);
  const stdout = stdoutDestination(process.stdout.isTTY === true);
  const logger = createLogger(settings.logLevel, stdout).child({ primary: process.pid });
  const metricsOn = settings.metrics || settings.metricsPort !== null;
  const aggregator = metricsOn ? new AggregatorRegistry() : null;

  // Slot i holds worker i's current process; slot 0 sweeps, so its replacement does too.
  const slots: (Worker | null)[] = Array.from({ length: count }, () => null);
  const ready = new Set<Worker>();
  const forkedAt = new Map<Worker, number>();
  let quickDeaths = 0;
  const restarts = new Set<NodeJS.Timeout>();
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  let url = '';
  let exitCode = 0;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let deadline: NodeJS.Timeout | undefined;

  const live = () => slots.filter((worker): worker is Worker => worker !== null);

  const done = () => {
    clearTimeout(deadline);
    logger.info('latchkey stopped');
    stdout.flushSync();
    finish(exitCode);
  };

  const stop = (code: number) => {
    if (phase === 'stopping') return;
    phase = 'stopping';
    exitCode = code;
    for (const timer of restarts) clearTimeout(timer);
    restarts.clear();
    // Each worker stops as a lone server does on SIGTERM: in-flight requests finish, stores close.
    for (const worker of live()) worker.process.kill('SIGTERM');
    deadline = setTimeout(() => {
      for (const worker of live()) worker.process.kill('SIGKILL');
    }, STOP_DEADLINE_MS);
    if (live().length === 0) done();
  };

  const fork = (slot: number) => {
    const worker = cluster.fork({ [SWEEPER_ENV]: slot === 0 ? '1' : '0' });
    slots[slot] = worker;
    forkedAt.set(worker, Date.now());
    worker.on('message', (message: { type?: unknown; url?: unknown; id?: unknown } | null) => {
      if (message?.type === READY && typeof message.url === 'string') {
        onReady(worker, message.url);
      } else if (message?.type === METRICS_REQUEST && typeof message.id === 'number') {
        answerMetrics(worker, message.id);
      }
    });
    worker.on('exit', (code, signal) => onExit(slot, worker, code, signal));
  };

  const onReady = (worker: Worker, at: string) => {
    ready.add(worker);
    if (phase === 'starting' && ready.size === count) {
      phase = 'running';
      url = at;
      const pids = live().map((each) => each.process.pid);
      logger.info(
        { workers: count, pids, url },
        `latchkey listening on ${url} with ${count} workers (pids ${pids.join(', ')})`,
      );
    } else if (phase === 'running') {
      logger.info({ pid: worker.process.pid, url }, 'worker restarted');
    }
  };

  const onExit = (slot: number, worker: Worker, code: number | null, signal: string | null) => {
    ready.delete(worker);
    const lived = Date.now() - (forkedAt.get(worker) ?? 0);
    forkedAt.delete(worker);
    if (slots[slot] === worker) slots[slot] = null;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (phase === 'stopping') {
      if (live().length === 0) done();
      return;
    }
    if (phase === 'starting') {
      // A worker that cannot start (bad TLS file, store unreachable, port taken) has printed
      // why; every worker would fail alike, so the primary exits as a lone server would.
      logger.error({ pid: worker.process.pid, code, signal }, `worker exited at start (${how})`);
      stop(code !== null && code !== 0 ? code : FAILED);
      return;
    }
    quickDeaths = lived < CRASH_WINDOW_MS ? quickDeaths + 1 : 0;
    if (quickDeaths >= CRASH_LIMIT) {
      logger.fatal(
        { pid: worker.process.pid, code, signal },
        `worker exited (${how}): ${quickDeaths} workers in a row died within ${CRASH_WINDOW_MS / 1000} s of starting, stopping`,
      );
      stop(FAILED);
      return;
    }
    const delay = RESTART_DELAY_MS * 2 ** Math.max(0, quickDeaths - 1);
    logger.warn(
      { pid: worker.process.pid, code, signal, restartInMs: delay },
      `worker exited (${how}); restarting it in ${delay} ms`,
    );
    const timer = setTimeout(() => {
      restarts.delete(timer);
      fork(slot);
    }, delay);
    restarts.add(timer);
  };

  const answerMetrics = (worker: Worker, id: number) => {
    const reply = (answer: MetricsAnswer) => {
      if (worker.isConnected()) worker.send(answer);
    };
    if (aggregator === null) {
      reply({ type: METRICS_ANSWER, id, error: 'metrics are off' });
      return;
    }
    aggregator.clusterMetrics().then(
      (body) => reply({ type: METRICS_ANSWER, id, body }),
      (error: unknown) => {
        logger.warn({ err: errorFields(error) }, 'cluster metrics failed');
        reply({ type: METRICS_ANSWER, id, error: 'cluster metrics failed' });
      },
    );
  };

  const onSignal = () => stop(0);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  for (let slot = 0; slot < count; slot += 1) fork(slot);
  try {
    return await finished;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
