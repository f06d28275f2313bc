/**
 * Scale figures, each from its own child process: memory per session in MemoryStore, validation
 * p99 with many sessions in SQLite and PostgreSQL, memory per session in Redis.
 */
import { existsSync } from 'node:fs';
import { runScript } from './child.mjs';

const built = (/** @type {string} */ file) =>
  existsSync(new URL(`../dist/${file}`, import.meta.url));

/**
 * @param {number} n sessions to store
 * @param {{ redis: any, postgresReason: string | null }} services
 */
export async function measureScale(n, services) {
  const env = services.redis.url ? { LATCHKEY_BENCH_REDIS_URL: services.redis.url } : {};
  /** @type {Record<string, any>} */
  const results = {};
  /** @param {string} name @param {string | null} skip @param {() => Promise<any>} run */
  const attempt = async (name, skip, run) => {
    process.stdout.write(`scale: ${name} with ${n.toLocaleString('en')} sessions\n`);
    if (skip) {
      results[name] = { skipped: skip };
      return;
    }
    try {
      results[name] = await run();
    } catch (error) {
      results[name] = { failed: String(/** @type {Error} */ (error).message) };
    }
  };
  // A heap of 1,000,000 sessions and their tokens needs more than the default old space.
  const bigHeap = ['--max-old-space-size=4096'];
  await attempt('memory', null, () =>
    runScript('scale/memory.mjs', [String(n)], { execArgv: ['--expose-gc', ...bigHeap] }),
  );
  await attempt('sqlite', null, () =>
    runScript('scale/validation.mjs', ['sqlite', String(n)], { execArgv: bigHeap }),
  );
  await attempt(
    'postgres',
    services.postgresReason ??
      (built('stores/postgres.js') ? null : 'dist/stores/postgres.js not built yet'),
    () => runScript('scale/validation.mjs', ['postgres', String(n)], { execArgv: bigHeap }),
  );
  await attempt(
    'redis',
    services.redis.reason ??
      (built('stores/redis.js') ? null : 'dist/stores/redis.js not built yet'),
    () => runScript('scale/redis-memory.mjs', [String(n)], { env, execArgv: bigHeap }),
  );
  return { results, text: scaleText(n, results) };
}

/** @param {number} n @param {Record<string, any>} r */
function scaleText(n, r) {
  const lines = [
    `Scale, ${n.toLocaleString('en')} sessions${n < 1_000_000 ? ' (scaled down: --quick)' : ''}:`,
  ];
  const show = (/** @type {any} */ x, /** @type {(x: any) => string} */ format) =>
    x.skipped ? `skipped: ${x.skipped}` : x.failed ? `failed: ${x.failed}` : format(x);
  lines.push(
    `- memory store: ${show(
      r.memory,
      (m) =>
        `${m.bytesPerSession} B/session (JS heap ${m.heapBytesPerSession} B + typed arrays ${m.arrayBufferBytesPerSession} B; target <= 250), RSS ${m.rssBytesPerSession} B/session; filled in ${m.fillSeconds} s`,
    )}`,
    `- SQLite validate(): ${show(r.sqlite, (s) => `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms over ${s.samples} random tokens (target p99 < 1 ms); ${s.diskBytesPerSession} B/session on disk`)}`,
    `- PostgreSQL validate(): ${show(r.postgres, (s) => `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms over ${s.samples} random tokens (target p99 < 2 ms)`)}`,
    `- Redis memory: ${show(r.redis, (s) => `${s.bytesPerSession} B/session (INFO used_memory delta, private redis-server)`)}`,
  );
  return lines.join('\n');
}
