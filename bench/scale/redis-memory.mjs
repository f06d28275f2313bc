/**
 * Redis memory per session: INFO used_memory before and after `n` creates of realistic sessions
 * (see tokens.mjs) through latchkey's RedisStore, on the bench's private redis-server
 * (LATCHKEY_BENCH_REDIS_URL). The breakdown comes from MEMORY USAGE: of sampled session hashes
 * (of which the key's own overhead: the same key name holding an empty string), and of every index
 * bucket (`{i:<bucket>}`, the session's share of them all); what is left is Redis' key tables and
 * expiry entries.
 */

import { createClient } from 'redis';
import { createStore, REDIS_PREFIX, REDIS_URL } from '../stores.mjs';
import { makeTokens, recordFor } from './tokens.mjs';

const n = Number(process.argv[2]);
const client = createClient({ url: REDIS_URL });
await client.connect();
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);
const usage = async (/** @type {string} */ key) =>
  Number(await client.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']));

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

const samples = Math.min(1000, n);
let session = 0;
let encoding = '';
for (let s = 0; s < samples; s++) {
  const i = Math.floor((s * n) / samples);
  const { id } = recordFor(tokens[i], i, now);
  const key = `${REDIS_PREFIX}s:${id}`;
  session += await usage(key);
  if (s === 0) encoding = String(await client.sendCommand(['OBJECT', 'ENCODING', key]));
}
// The index: 16,384 bucket hashes (src/stores/redis/sessions.ts INDEX_BUCKETS), all measured.
let index = 0;
const bucketEncodings = new Set();
for (let bucket = 0; bucket < 16_384; bucket++) {
  const key = `${REDIS_PREFIX}{i:${bucket}}`;
  index += await usage(key);
  if (bucket % 1024 === 0)
    bucketEncodings.add(String(await client.sendCommand(['OBJECT', 'ENCODING', key])));
}
const probe = `${REDIS_PREFIX}s:${recordFor(tokens[0], 0, now).id.replace(/./g, 'x')}`;
await client.set(probe, '');
const keyOverhead = await usage(probe);
await client.del(probe);
await store.close();
await client.quit();
const perSession = Math.round((after - before) / n);
const sessionHash = Math.round(session / samples);
const indexEntry = Math.round(index / n);
process.send?.({
  sessions: n,
  sessionsPerUser: 1,
  fillSeconds: Math.round(fillSeconds * 10) / 10,
  bytesPerSession: perSession,
  breakdown: {
    keyOverhead,
    record: sessionHash - keyOverhead,
    sessionEncoding: encoding,
    index: indexEntry,
    indexEncoding: [...bucketEncodings].join(' '),
    keyTablesAndExpiries: perSession - sessionHash - indexEntry,
  },
});
