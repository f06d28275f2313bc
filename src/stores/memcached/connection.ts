import { createHash } from 'node:crypto';
import { MemcacheClient } from 'memcache-client';

/**
 * One memcached server as the store uses it, typed by shape so that this package's public types
 * never need `memcache-client`'s (a `MemcacheClient` whose values come back as raw bytes fits).
 */
export interface MemcachedNode {
  get(key: string | string[]): Promise<unknown>;
  gets(key: string): Promise<unknown>;
  set(key: string, value: Buffer, options: { lifetime: number }): Promise<unknown>;
  add(key: string, value: Buffer, options: { lifetime: number }): Promise<unknown>;
  append(key: string, value: Buffer, options: { lifetime: number }): Promise<unknown>;
  touch(key: string, exptime: number): Promise<unknown>;
  cas(
    key: string,
    value: Buffer,
    options: { lifetime: number; casUniq: string | number },
  ): Promise<unknown>;
  delete(key: string): Promise<unknown>;
  cmd(line: string): Promise<unknown>;
  shutdown(): void;
}

/**
 * A `MemcacheClient` that hands every value back as the bytes memcached holds: the store decodes
 * them itself, so an item written by something else (other flags, bad JSON) reads as no record
 * instead of failing the whole reply.
 */
class RawClient extends MemcacheClient {
  override _unpackValue(result: { data: string | Buffer }): Buffer {
    return Buffer.isBuffer(result.data) ? result.data : Buffer.from(result.data);
  }
}

/** memcached reads an exptime above this many seconds (30 days) as a Unix timestamp. */
export const MAX_RELATIVE_EXPTIME = 2_592_000;

/**
 * Records dead by this process's clock stay this long, so a caller whose clock differs (skew, an
 * injected test clock) still sees what the contract promises; live records expire on time.
 */
export const LINGER_MS = 60_000;

/**
 * The memcached exptime of an item whose record dies at `deadline` (ms since the epoch): relative
 * seconds up to 30 days, else the Unix timestamp memcached expects; never 0 ("never expires").
 */
export function exptimeFor(deadline: number, now = Date.now()): number {
  const at = Math.max(deadline, now + LINGER_MS);
  const seconds = Math.ceil((at - now) / 1000);
  return seconds <= MAX_RELATIVE_EXPTIME ? seconds : Math.ceil(at / 1000);
}

/** What a conditional write did. */
export type CasResult = 'stored' | 'exists' | 'missing';

/** An item read with its CAS token. */
export interface CasItem {
  readonly value: Buffer;
  readonly cas: string;
}

/** Whether memcached refused a write for its size or for memory (`SERVER_ERROR …`). */
export function isServerError(error: unknown): boolean {
  const tokens = (error as { cmdTokens?: unknown } | null)?.cmdTokens;
  return Array.isArray(tokens) && tokens[0] === 'SERVER_ERROR';
}

/** The replies that answer a command (a miss, a lost race) rather than report an outage. */
const ANSWERS = new Set(['NOT_FOUND', 'NOT_STORED', 'EXISTS']);

/** The answer memcached gave (`NOT_FOUND`, `NOT_STORED`, `EXISTS`); rethrows any other failure. */
function answerOf(error: unknown): string {
  const tokens = (error as { cmdTokens?: unknown } | null)?.cmdTokens;
  const first = Array.isArray(tokens) ? tokens[0] : undefined;
  if (typeof first === 'string' && ANSWERS.has(first)) return first;
  throw error;
}

function itemOf(reply: unknown): CasItem | null {
  if (typeof reply !== 'object' || reply === null) return null;
  const { value, casUniq } = reply as { value?: unknown; casUniq?: unknown };
  if (!Buffer.isBuffer(value) || casUniq === undefined) return null;
  return { value, cas: String(casUniq) };
}

export interface ClusterSettings {
  readonly prefix: string;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  readonly maxConnections: number;
}

/**
 * The store's memcached servers: each key lives on one server, chosen by rendezvous hashing of
 * the key over the server list (a server that is down keeps its keys: calls for them reject,
 * never fall through to another server that would answer "not found").
 */
export class Cluster {
  readonly nodes: readonly MemcachedNode[];
  /** The item size limit the servers enforce (the smallest `item_size_max`), once read. */
  itemSizeMax = 1_048_576;

  constructor(
    readonly servers: readonly string[],
    private readonly settings: ClusterSettings,
    nodes?: readonly MemcachedNode[],
  ) {
    this.nodes =
      nodes ??
      servers.map(
        (server) =>
          new RawClient({
            server: { server, maxConnections: settings.maxConnections },
            connectTimeout: settings.connectTimeout,
            cmdTimeout: settings.commandTimeout,
            // Keep-alive probes only; the client reconnects by itself after an outage.
            keepAlive: 60_000,
            noDelay: true,
          }) as unknown as MemcachedNode,
      );
  }

  key(name: string): string {
    return `${this.settings.prefix}${name}`;
  }

  /** The node holding `key` (the highest rendezvous score). */
  nodeFor(key: string): MemcachedNode {
    const nodes = this.nodes;
    if (nodes.length === 1) return nodes[0] as MemcachedNode;
    let best = 0;
    let bestScore = -1;
    for (let i = 0; i < nodes.length; i++) {
      const score = createHash('md5').update(`${this.servers[i]}\n${key}`).digest().readUInt32BE(0);
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    return nodes[best] as MemcachedNode;
  }

  /** Index of the server holding `key` (for tests and diagnostics). */
  serverOf(key: string): string {
    return this.servers[this.nodes.indexOf(this.nodeFor(key))] as string;
  }

  async read(key: string): Promise<Buffer | null> {
    const reply = await this.nodeFor(key).get(key);
    const value = (reply as { value?: unknown } | undefined)?.value;
    return Buffer.isBuffer(value) ? value : null;
  }

  async readCas(key: string): Promise<CasItem | null> {
    return itemOf(await this.nodeFor(key).gets(key));
  }

  /** The values of `keys` that exist, each server asked once (any server failing rejects). */
  async readMany(keys: readonly string[]): Promise<Map<string, Buffer>> {
    const byNode = new Map<MemcachedNode, string[]>();
    for (const key of keys) {
      const node = this.nodeFor(key);
      const list = byNode.get(node);
      if (list) list.push(key);
      else byNode.set(node, [key]);
    }
    const found = new Map<string, Buffer>();
    const batches: Promise<void>[] = [];
    for (const [node, all] of byNode) {
      // Batches of 100 keep each request line (and each reply) of a long list small.
      for (let i = 0; i < all.length; i += 100) {
        const batch = all.slice(i, i + 100);
        batches.push(
          node.get(batch).then((reply) => {
            const items = (reply ?? {}) as Record<string, { value?: unknown }>;
            for (const key of batch) {
              const value = Object.hasOwn(items, key) ? items[key]?.value : undefined;
              if (Buffer.isBuffer(value)) found.set(key, value);
            }
          }),
        );
      }
    }
    await Promise.all(batches);
    return found;
  }

  async write(key: string, value: Buffer, deadline: number): Promise<void> {
    this.checkSize(key, value);
    await this.nodeFor(key).set(key, value, { lifetime: exptimeFor(deadline) });
  }

  /** Stores `value` only if `key` holds nothing; false when it does. */
  async add(key: string, value: Buffer, deadline: number): Promise<boolean> {
    this.checkSize(key, value);
    try {
      await this.nodeFor(key).add(key, value, { lifetime: exptimeFor(deadline) });
      return true;
    } catch (error) {
      answerOf(error);
      return false;
    }
  }

  /** Adds `value` at the end of `key`'s item (atomic); false when there is no such item. */
  async append(key: string, value: Buffer): Promise<boolean> {
    try {
      await this.nodeFor(key).append(key, value, { lifetime: 0 });
      return true;
    } catch (error) {
      answerOf(error);
      return false;
    }
  }

  /** Moves `key`'s expiry to `deadline`; false when there is no such item. */
  async touch(key: string, deadline: number): Promise<boolean> {
    try {
      await this.nodeFor(key).touch(key, exptimeFor(deadline));
      return true;
    } catch (error) {
      answerOf(error);
      return false;
    }
  }

  /** Stores `value` only if `key` still has CAS token `cas`. */
  async cas(key: string, value: Buffer, cas: string, deadline: number): Promise<CasResult> {
    this.checkSize(key, value);
    return this.casRaw(key, value, cas, exptimeFor(deadline));
  }

  /** Deletes `key` only if it still has CAS token `cas` (a CAS write that expires at once). */
  async deleteIfUnchanged(key: string, cas: string): Promise<CasResult> {
    return this.casRaw(key, Buffer.alloc(0), cas, -1);
  }

  async remove(key: string): Promise<boolean> {
    try {
      await this.nodeFor(key).delete(key);
      return true;
    } catch (error) {
      answerOf(error);
      return false;
    }
  }

  /** `stats <kind>` (or `stats`) of every server, as name → value. */
  async stats(kind = ''): Promise<Record<string, string>[]> {
    return Promise.all(
      this.nodes.map(async (node) => {
        const reply = (await node.cmd(kind ? `stats ${kind}` : 'stats')) as {
          STAT?: unknown;
        };
        const stats: Record<string, string> = {};
        if (Array.isArray(reply?.STAT)) {
          for (const entry of reply.STAT as unknown[]) {
            if (Array.isArray(entry) && typeof entry[0] === 'string') {
              stats[entry[0]] = String(entry[1] ?? '');
            }
          }
        }
        return stats;
      }),
    );
  }

  close(): void {
    for (const node of this.nodes) node.shutdown();
  }

  private async casRaw(
    key: string,
    value: Buffer,
    cas: string,
    lifetime: number,
  ): Promise<CasResult> {
    try {
      await this.nodeFor(key).cas(key, value, { lifetime, casUniq: cas });
      return 'stored';
    } catch (error) {
      return answerOf(error) === 'EXISTS' ? 'exists' : 'missing';
    }
  }

  /** A value memcached would refuse (item_size_max) fails here, with a message that says so. */
  private checkSize(key: string, value: Buffer): void {
    // memcached counts the item header and key against the limit too; 64 bytes covers the header.
    if (value.length + Buffer.byteLength(key) + 64 > this.itemSizeMax) {
      throw new Error(
        `memcached: an item of ${value.length} bytes would pass the servers' item size limit (${this.itemSizeMax} bytes)`,
      );
    }
  }
}

/** Rounds of one compare-and-swap loop before it gives up (a rejection: the store is overloaded). */
export const MAX_CAS_ROUNDS = 500;

/** Returned by a CAS step that lost its race: read again and retry. */
export const RETRY = Symbol('retry');

/**
 * Runs `step` until it gives an answer rather than {@link RETRY}, waiting a little (random, a few
 * ms at most) between lost rounds so parallel writers of one key spread out.
 */
export async function casLoop<T>(step: () => Promise<T | typeof RETRY>): Promise<T> {
  for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
    const result = await step();
    if (result !== RETRY) return result;
    await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(1 + round, 10)));
  }
  throw new Error(`memcached: a compare-and-swap lost ${MAX_CAS_ROUNDS} rounds in a row`);
}
