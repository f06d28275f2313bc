import type { AttemptRule, ThrottleDecision, ThrottleStore } from '../../core/capabilities.js';
import { type AttemptWindow, consumeFrom } from '../throttle-window.js';
import { type Cluster, casLoop, isServerError, LINGER_MS, RETRY } from './connection.js';
import { decodeObject, hashed } from './records.js';

/** Shards of the window-end index, so parallel new windows rarely touch one item. */
const SHARDS = 8;
/** Entries one shard keeps when it must be trimmed (memcached's item size limit). */
const SHARD_ENTRIES = 5_000;
/** How long a shard outlives the window that created it (its appends never move its expiry). */
const SHARD_SLACK_MS = 24 * 60 * 60_000;

type End = readonly [key: string, windowEnd: number];

function windowOf(bytes: Buffer | null): AttemptWindow | null {
  const value = decodeObject(bytes);
  if (!value) return null;
  const { count, windowEnd, nextAllowedAt } = value;
  const ok = [count, windowEnd, nextAllowedAt].every(
    (n) => typeof n === 'number' && Number.isFinite(n),
  );
  return ok ? ({ count, windowEnd, nextAllowedAt } as AttemptWindow) : null;
}

function endsOf(bytes: Buffer | null): End[] {
  if (!bytes) return [];
  const ends: End[] = [];
  for (const text of bytes.toString('utf8').split('\n')) {
    if (!text) continue;
    try {
      const value: unknown = JSON.parse(text);
      if (Array.isArray(value) && typeof value[0] === 'string' && typeof value[1] === 'number') {
        ends.push([value[0], value[1]]);
      }
    } catch {
      // A torn or foreign line names no window.
    }
  }
  return ends;
}

const encodeEnds = (ends: readonly End[]): Buffer =>
  Buffer.from(ends.map((end) => `${JSON.stringify(end)}\n`).join(''));

/**
 * Login-attempt windows: `t:<sha256(key)>` holds `{count, windowEnd, nextAllowedAt}`, changed by a
 * compare-and-swap loop over {@link consumeFrom} (so parallel attempts never count past the limit)
 * and expiring by itself once the window and its wait are over. Each new window also appends
 * `[key, windowEnd]` to one of {@link SHARDS} index items (`t-ends:<n>`), which is all that
 * `deleteExpiredAttempts` needs: memcached has no way to list keys.
 */
export class MemcachedThrottle implements ThrottleStore {
  constructor(private readonly memcached: Cluster) {}

  async consumeAttempt(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision> {
    const name = hashed(key);
    const itemKey = this.windowKey(name);
    return casLoop(async () => {
      const item = await this.memcached.readCas(itemKey);
      const current = windowOf(item?.value ?? null);
      const { decision, save } = consumeFrom(current, now, rule);
      if (!save) return decision;
      const bytes = Buffer.from(JSON.stringify(save));
      const deadline = Math.max(save.windowEnd, save.nextAllowedAt);
      const stored = item
        ? (await this.memcached.cas(itemKey, bytes, item.cas, deadline)) === 'stored'
        : await this.memcached.add(itemKey, bytes, deadline);
      if (!stored) return RETRY;
      if (current?.windowEnd !== save.windowEnd) await this.register(name, save.windowEnd);
      return decision;
    });
  }

  async resetAttempts(key: string): Promise<void> {
    // Its index entry stays until the next sweep, which then finds no window.
    await this.memcached.remove(this.windowKey(hashed(key)));
  }

  async deleteExpiredAttempts(now: number): Promise<number> {
    const counts = await Promise.all(
      Array.from({ length: SHARDS }, (_, shard) => this.sweepShard(shard, now)),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  private async sweepShard(shard: number, now: number): Promise<number> {
    const shardKey = this.shardKey(shard);
    const due = new Set<string>();
    for (const [name, end] of endsOf(await this.memcached.read(shardKey))) {
      if (end <= now) due.add(name);
    }
    if (due.size === 0) return 0;
    let deleted = 0;
    await Promise.all(
      [...due].map(async (name) => {
        const itemKey = this.windowKey(name);
        const item = await this.memcached.readCas(itemKey);
        const window = windowOf(item?.value ?? null);
        if (!item || !window || window.windowEnd > now) return;
        if ((await this.memcached.deleteIfUnchanged(itemKey, item.cas)) === 'stored') deleted++;
      }),
    );
    await this.rewriteShard(shard, (ends) =>
      ends.filter(([name, end]) => !(due.has(name) && end <= now)),
    );
    return deleted;
  }

  /** Appends a window's end to its shard; a shard too large for memcached is trimmed first. */
  private async register(name: string, windowEnd: number): Promise<void> {
    const shard = (name.charCodeAt(0) + name.charCodeAt(1)) % SHARDS;
    const shardKey = this.shardKey(shard);
    const bytes = encodeEnds([[name, windowEnd]]);
    for (let round = 0; round < 3; round++) {
      try {
        if (await this.memcached.append(shardKey, bytes)) return;
        if (await this.memcached.add(shardKey, bytes, windowEnd + SHARD_SLACK_MS)) return;
      } catch (error) {
        if (!isServerError(error)) throw error;
        await this.rewriteShard(shard, (ends) => this.trimmed(ends));
      }
    }
  }

  /**
   * The entries a full shard keeps: windows not yet over, the latest-ending first, within half the
   * item size limit (the others expire by themselves; only `deleteExpiredAttempts` misses them).
   */
  private trimmed(ends: readonly End[]): End[] {
    const now = Date.now();
    const budget = this.memcached.servers.itemSizeMax / 2;
    const kept: End[] = [];
    let bytes = 0;
    for (const end of [...ends].sort((a, b) => b[1] - a[1])) {
      if (end[1] + LINGER_MS <= now || kept.length >= SHARD_ENTRIES) break;
      bytes += Buffer.byteLength(JSON.stringify(end)) + 1;
      if (bytes > budget) break;
      kept.push(end);
    }
    return kept.reverse();
  }

  private async rewriteShard(shard: number, change: (ends: End[]) => End[]): Promise<void> {
    const shardKey = this.shardKey(shard);
    await casLoop(async () => {
      const item = await this.memcached.readCas(shardKey);
      if (!item) return undefined;
      const kept = change(endsOf(item.value));
      const deadline = Math.max(0, ...kept.map(([, end]) => end)) + SHARD_SLACK_MS;
      const result =
        kept.length === 0
          ? await this.memcached.deleteIfUnchanged(shardKey, item.cas)
          : await this.memcached.cas(shardKey, encodeEnds(kept), item.cas, deadline);
      return result === 'exists' ? RETRY : undefined;
    });
  }

  private windowKey(name: string): string {
    return this.memcached.key(`t:${name}`);
  }

  private shardKey(shard: number): string {
    return this.memcached.key(`t-ends:${shard}`);
  }
}
