/**
 * Memory per session in MemoryStore (run with --expose-gc). Fills the store through
 * `Sessions.create`, so records have their real shape, then takes it apart piece by piece to
 * show which part dominates.
 */
const { Latchkey, MemoryStore } = await import('../../dist/index.js');

const n = Number(process.argv[2]);
const gc = /** @type {() => void} */ (globalThis.gc);

function settle() {
  for (let i = 0; i < 3; i++) gc();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

const store = new MemoryStore({ maxSessions: n });
const latchkey = new Latchkey({ store });
const base = settle();
const started = performance.now();
for (let i = 0; i < n; i++) {
  await latchkey.create(`user-${i}`, { user: { id: `user-${i}`, username: `user${i}` } });
}
const fillSeconds = (performance.now() - started) / 1000;
const full = settle();

// Take the store apart (its private fields are plain properties in the built JS) to attribute
// the heap: the per-user index, then the expiry heap, then the records themselves.
/** @type {Record<string, number>} */
const parts = {};
let last = full.heapUsed;
const SHARED = Object.freeze({});
for (const [name, clear] of /** @type {[string, () => void][]} */ ([
  ['per-user index (byUser: Map of Sets)', () => store.byUser.clear()],
  ['expiry heap (idle deadlines)', () => store.expiry.clear()],
  ['user snapshots ({ id, username })', () => replaceInRecords({ user: SHARED })],
  ['empty data objects', () => replaceInRecords({ data: SHARED })],
  ['records Map + record objects + id/userId strings', () => store.records.clear()],
])) {
  clear();
  const now = settle().heapUsed;
  parts[name] = Math.round((last - now) / n);
  last = now;
}

/** Points every record's field at one shared object, so the heap drops by what those fields held. */
function replaceInRecords(/** @type {object} */ fields) {
  for (const [id, record] of store.records) store.records.set(id, { ...record, ...fields });
}

process.send?.({
  sessions: n,
  fillSeconds: Math.round(fillSeconds * 10) / 10,
  rssBytesPerSession: Math.round((full.rss - base.rss) / n),
  heapBytesPerSession: Math.round((full.heapUsed - base.heapUsed) / n),
  heapBytesPerSessionByPart: parts,
});
