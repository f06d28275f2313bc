/**
 * Scale figures, each from its own child process: memory per session in MemoryStore, validation
 * p99 with many sessions in SQLite and PostgreSQL, memory per session in Redis.
 */
import { existsSync } from 'node:fs';
import { runScript } from './child.mjs';

const built = (/** @type {string} */ file) =>
  existsSync(new URL(`../dist/${file}`, import.meta.url));

/**
 * @param {{ scaleSessions: number, memoryScaleSessions: number }} sizes sessions to store (in
 *   the memory store: `memoryScaleSessions`)
 * @param {{ redis: any, postgresReason: string | null }} services
 */
export async function measureScale(sizes, services) {
  const n = sizes.scaleSessions;
  const inMemory = sizes.memoryScaleSessions;
  const env = services.redis.url ? { LATCHKEY_BENCH_REDIS_URL: services.redis.url } : {};
  /** @type {Record<string, any>} */
  const results = {};
  /** @param {string} name @param {string | null} skip @param {() => Promise<any>} run */
  const attempt = async (name, skip, run, count = n) => {
    process.stdout.write(`scale: ${name} with ${count.toLocaleString('en')} sessions\n`);
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
  await attempt(
    'memory',
    null,
    () =>
      runScript('scale/memory.mjs', [String(inMemory)], { execArgv: ['--expose-gc', ...bigHeap] }),
    inMemory,
  );
  await attempt('sqlite', null, () =>
    runScript('scale/validation.mjs', ['sqlite', String(n)], { execArgv: bigHeap }),
  );
  await attempt(
    'postgres',
    services.postgresReason ??
      (built('stores/postgres/index.js') ? null : 'dist/stores/postgres/index.js not built yet'),
    () => runScript('scale/validation.mjs', ['postgres', String(n)], { execArgv: bigHeap }),
  );
  await attempt(
    'redis',
    services.redis.reason ??
      (built('stores/redis/index.js') ? null : 'dist/stores/redis/index.js not built yet'),
    () => runScript('scale/redis-memory.mjs', [String(n)], { env, execArgv: bigHeap }),
  );
  return { results, text: scaleText(results) };
}

/** @param {Record<string, any>} r */
function scaleText(r) {
  const lines = ['Scale (sessions stored in brackets; the targets are at 1,000,000):'];
  const at = (/** @type {any} */ x) => (x?.sessions ? ` [${x.sessions.toLocaleString('en')}]` : '');
  const show = (/** @type {any} */ x, /** @type {(x: any) => string} */ format) =>
    x.skipped ? `skipped: ${x.skipped}` : x.failed ? `failed: ${x.failed}` : format(x);
  lines.push(
    `- memory store${at(r.memory)}: ${show(
      r.memory,
      (m) =>
        `${m.bytesPerSession} B/session (JS heap ${m.heapBytesPerSession} B + typed arrays ${m.arrayBufferBytesPerSession} B; target <= 250), RSS ${m.rssBytesPerSession} B/session; filled in ${m.fillSeconds} s`,
    )}`,
    `- SQLite validate()${at(r.sqlite)}: ${show(r.sqlite, (s) => `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms over ${s.samples} random tokens (target p99 < 1 ms); ${s.diskBytesPerSession} B/session on disk`)}`,
    `- PostgreSQL validate()${at(r.postgres)}: ${show(r.postgres, (s) => `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms over ${s.samples} random tokens (target p99 < 2 ms)`)}`,
    `- Redis memory${at(r.redis)}: ${show(r.redis, (s) => `${s.bytesPerSession} B/session (INFO used_memory delta, private redis-server; realistic session, one per user; target <= 500 at 1,000,000): key overhead ${s.breakdown.keyOverhead} B + record ${s.breakdown.record} B (${s.breakdown.sessionEncoding}) + index entry ${s.breakdown.index} B (${s.breakdown.indexEncoding} buckets) + key tables and expiry entries ${s.breakdown.keyTablesAndExpiries} B`)}`,
  );
  return lines.join('\n');
}
