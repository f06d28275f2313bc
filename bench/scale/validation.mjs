/**
 * Validation latency with many sessions stored: `node scale/validation.mjs <sqlite|postgres> <n>`.
 * Both are filled in bulk through the store's own handle (minutes faster than one create per
 * session): SQLite in one transaction, PostgreSQL in multi-row INSERTs of 10,000 rows from
 * arrays (unnest). The bench's PostgreSQL schema is emptied before and after.
 */
import { statSync } from 'node:fs';
import { createStore } from '../stores.mjs';
import { makeTokens, recordFor, timeValidations } from './tokens.mjs';

const { Latchkey } = await import('../../dist/index.js');
/** The bench schema's sessions table (see bench/stores.mjs). */
const PG_SESSIONS = '"latchkey_bench".latchkey_sessions';
const [kind, count] = process.argv.slice(2);
const n = Number(count);

const store = await createStore(/** @type {any} */ (kind));
const tokens = makeTokens(n);
const now = Date.now();
const started = performance.now();
if (kind === 'sqlite') fillSqlite(/** @type {any} */ (store), tokens, now);
else if (kind === 'postgres') await fillPostgres(/** @type {any} */ (store), tokens, now);
else await fillByCreate(store, tokens, now);
const fillSeconds = (performance.now() - started) / 1000;

const latchkey = new Latchkey({ store });
await timeValidations(latchkey, tokens, 1000); // warm caches and the JIT
const timing = await timeValidations(latchkey, tokens, 10_000);
const result = {
  store: kind,
  sessions: n,
  fillSeconds: Math.round(fillSeconds * 10) / 10,
  ...timing,
};
if (kind === 'sqlite') {
  const file = /** @type {any} */ (store).db.name;
  Object.assign(result, { diskBytesPerSession: Math.round(statSync(file).size / n) });
}
if (kind === 'postgres') await emptyPostgres(/** @type {any} */ (store));
await store.close();
process.send?.(result);

/**
 * @param {{ db: import('better-sqlite3').Database }} sqlite
 * @param {string[]} all
 * @param {number} time
 */
function fillSqlite(sqlite, all, time) {
  const insert = sqlite.db.prepare(
    `INSERT INTO latchkey_sessions (id, user_id, created_at, last_seen_at, idle_expires_at,
       absolute_expires_at, authenticated_at, ip, user_agent, user, data)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  sqlite.db.transaction(() => {
    for (let i = 0; i < all.length; i++) {
      const r = recordFor(all[i], i, time);
      insert.run(
        r.id,
        r.userId,
        r.createdAt,
        r.lastSeenAt,
        r.idleExpiresAt,
        r.absoluteExpiresAt,
        r.authenticatedAt,
        r.ip,
        r.userAgent,
        JSON.stringify(r.user),
        JSON.stringify(r.data),
      );
    }
  })();
  sqlite.db.pragma('wal_checkpoint(TRUNCATE)');
}

/** @param {{ pool: import('pg').Pool }} postgres */
async function emptyPostgres(postgres) {
  await postgres.pool.query(`TRUNCATE ${PG_SESSIONS}`);
}

/**
 * @param {{ pool: import('pg').Pool }} postgres
 * @param {string[]} all
 * @param {number} time
 */
async function fillPostgres(postgres, all, time) {
  await emptyPostgres(postgres);
  const batch = 10_000;
  for (let start = 0; start < all.length; start += batch) {
    const records = all
      .slice(start, start + batch)
      .map((token, i) => recordFor(token, start + i, time));
    const column = (/** @type {(r: any) => unknown} */ pick) => records.map(pick);
    await postgres.pool.query(
      `INSERT INTO ${PG_SESSIONS} (id, user_id, created_at, last_seen_at, idle_expires_at,
         absolute_expires_at, authenticated_at, ip, user_agent, "user", data)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
         $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[])`,
      [
        column((r) => r.id),
        column((r) => r.userId),
        column((r) => r.createdAt),
        column((r) => r.lastSeenAt),
        column((r) => r.idleExpiresAt),
        column((r) => r.absoluteExpiresAt),
        column((r) => r.authenticatedAt),
        column((r) => r.ip),
        column((r) => r.userAgent),
        column((r) => JSON.stringify(r.user)),
        column((r) => JSON.stringify(r.data)),
      ],
    );
  }
  await postgres.pool.query(`ANALYZE ${PG_SESSIONS}`);
}

/**
 * @param {import('../../dist/index.js').SessionStore} target
 * @param {string[]} all
 * @param {number} time
 */
async function fillByCreate(target, all, time) {
  let next = 0;
  const worker = async () => {
    while (next < all.length) {
      const i = next++;
      await target.create(recordFor(all[i], i, time));
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}
