/**
 * Validation latency with many sessions stored: `node scale/validation.mjs <sqlite|postgres> <n>`.
 * SQLite is filled in one transaction through the store's own db handle (minutes faster than
 * one create per session); other stores through `create`, many at a time.
 */
import { statSync } from 'node:fs';
import { createStore } from '../stores.mjs';
import { makeTokens, recordFor, timeValidations } from './tokens.mjs';

const { Latchkey } = await import('../../dist/index.js');
const [kind, count] = process.argv.slice(2);
const n = Number(count);

const store = await createStore(/** @type {any} */ (kind));
const tokens = makeTokens(n);
const now = Date.now();
const started = performance.now();
if (kind === 'sqlite') fillSqlite(/** @type {any} */ (store), tokens, now);
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
