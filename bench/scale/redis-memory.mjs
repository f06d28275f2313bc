/**
 * Redis memory per session: INFO used_memory before and after `n` creates through latchkey's
 * RedisStore, on the bench's private redis-server (LATCHKEY_BENCH_REDIS_URL).
 */
import { createClient } from 'redis';
import { createStore, REDIS_URL } from '../stores.mjs';
import { makeTokens, recordFor } from './tokens.mjs';

const n = Number(process.argv[2]);
const client = createClient({ url: REDIS_URL });
await client.connect();
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);

const store = await createStore('redis');
const before = await usedMemory();
const tokens = makeTokens(n);
const now = Date.now();
let next = 0;
const worker = async () => {
  while (next < n) {
    const i = next++;
    await store.create(recordFor(tokens[i], i, now));
  }
};
const started = performance.now();
await Promise.all(Array.from({ length: 64 }, worker));
const fillSeconds = (performance.now() - started) / 1000;
const after = await usedMemory();
await store.close();
await client.quit();
process.send?.({
  sessions: n,
  fillSeconds: Math.round(fillSeconds * 10) / 10,
  bytesPerSession: Math.round((after - before) / n),
});
