/**
 * Memory per session in MemoryStore (run with --expose-gc). Fills the store through
 * `Sessions.create`, so records have their real shape (one session per user, the worst case for
 * a per-user index; a `{ id, username }` snapshot like `latchkey serve` keeps), then reports the
 * growth after a full GC: JS heap plus ArrayBuffers (the store keeps its times in typed arrays,
 * which `heapUsed` does not count), and RSS.
 */
const { Latchkey, MemoryStore } = await import('../../dist/index.js');

const n = Number(process.argv[2]);
const gc = /** @type {() => void} */ (globalThis.gc);

function settle() {
  for (let i = 0; i < 3; i++) gc();
  const { rss, heapUsed, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, arrayBuffers };
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
if (store.size !== n) throw new Error(`store holds ${store.size} sessions, not ${n}`);

const per = (/** @type {number} */ bytes) => Math.round(bytes / n);
const heap = full.heapUsed - base.heapUsed;
const buffers = full.arrayBuffers - base.arrayBuffers;
process.send?.({
  sessions: n,
  fillSeconds: Math.round(fillSeconds * 10) / 10,
  bytesPerSession: per(heap + buffers),
  heapBytesPerSession: per(heap),
  arrayBufferBytesPerSession: per(buffers),
  rssBytesPerSession: per(full.rss - base.rss),
});
