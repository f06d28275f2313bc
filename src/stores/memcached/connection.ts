import { type MemcachedNode, type MemcachedServers, ServerDownError } from './servers.js';

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

/**
 * Keys on the store's memcached servers (see {@link MemcachedServers} for how a key finds its
 * server and what a server that is down does). Every call for a key whose server is down throws
 * {@link ServerDownError}; callers that may answer without it use {@link Cluster.unlessDown}.
 */
export class Cluster {
  constructor(
    readonly servers: MemcachedServers,
    private readonly prefix: string,
    /** Keys fail over to the next server that is up (throttle counters), instead of staying. */
    private readonly failover = false,
  ) {}

  key(name: string): string {
    return `${this.prefix}${name}`;
  }

  /**
   * A key named after `name` that lives on `anchor`'s server: the first `name~0`, `name~1`, …
   * that rendezvous hashing puts there, so an item that must be read with another fails with it.
   */
  keyBeside(name: string, anchor: string): string {
    const home = this.servers.indexOf(anchor);
    for (let n = 0; ; n++) {
      const key = this.key(`${name}~${n}`);
      if (this.servers.indexOf(key) === home) return key;
    }
  }

  /** The same keys and servers, routed with failover (see {@link MemcachedServers.indexOf}). */
  withFailover(): Cluster {
    return new Cluster(this.servers, this.prefix, true);
  }

  /** The server (`host:port`) that holds `key`. */
  serverOf(key: string): string {
    return this.servers.addresses[this.servers.indexOf(key, this.failover)] as string;
  }

  /** Whether `key`'s server is up now (a new session id is drawn until its key's is). */
  isUp(key: string): boolean {
    return this.servers.isUp(this.servers.indexOf(key));
  }

  /**
   * `work`'s answer, or `absent` when its key's server is down while another server answers (a
   * session there is logged out, never moved). With no server answering, the outage is rethrown.
   */
  async unlessDown<T>(work: () => Promise<T>, absent: T): Promise<T> {
    const since = this.servers.answers;
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof ServerDownError)) throw error;
      if (!(await this.servers.anotherAnswers(error.index, since))) throw error;
      this.servers.servedFor(error.index);
      return absent;
    }
  }

  async read(key: string): Promise<Buffer | null> {
    const reply = await this.on(key, (node) => node.get(key));
    const value = (reply as { value?: unknown } | undefined)?.value;
    return Buffer.isBuffer(value) ? value : null;
  }

  async readCas(key: string): Promise<CasItem | null> {
    return itemOf(await this.on(key, (node) => node.gets(key)));
  }

  /**
   * The values of `keys` that exist, each server asked once, and the keys whose server is down
   * (only while another server is up; with every server down this rejects).
   */
  async readMany(
    keys: readonly string[],
  ): Promise<{ found: Map<string, Buffer>; unreachable: Set<string> }> {
    const byServer = new Map<number, string[]>();
    for (const key of keys) {
      const index = this.servers.indexOf(key, this.failover);
      const list = byServer.get(index);
      if (list) list.push(key);
      else byServer.set(index, [key]);
    }
    const found = new Map<string, Buffer>();
    const unreachable = new Set<string>();
    const batches: Promise<void>[] = [];
    for (const [index, all] of byServer) {
      // Batches of 100 keep each request line (and each reply) of a long list small.
      for (let i = 0; i < all.length; i += 100) {
        const batch = all.slice(i, i + 100);
        const read = () =>
          this.servers.call(index, async (node) => {
            const items = ((await node.get(batch)) ?? {}) as Record<string, { value?: unknown }>;
            for (const key of batch) {
              const value = Object.hasOwn(items, key) ? items[key]?.value : undefined;
              if (Buffer.isBuffer(value)) found.set(key, value);
            }
            return true;
          });
        batches.push(
          this.unlessDown(read, false).then((reached) => {
            if (!reached) for (const key of batch) unreachable.add(key);
          }),
        );
      }
    }
    await Promise.all(batches);
    return { found, unreachable };
  }

  async write(key: string, value: Buffer, deadline: number): Promise<void> {
    this.checkSize(key, value);
    await this.on(key, (node) => node.set(key, value, { lifetime: exptimeFor(deadline) }));
  }

  /** Stores `value` only if `key` holds nothing; false when it does. */
  async add(key: string, value: Buffer, deadline: number): Promise<boolean> {
    this.checkSize(key, value);
    return this.answered(key, (node) => node.add(key, value, { lifetime: exptimeFor(deadline) }));
  }

  /** Adds `value` at the end of `key`'s item (atomic); false when there is no such item. */
  async append(key: string, value: Buffer): Promise<boolean> {
    return this.answered(key, (node) => node.append(key, value, { lifetime: 0 }));
  }

  /** Moves `key`'s expiry to `deadline`; false when there is no such item. */
  async touch(key: string, deadline: number): Promise<boolean> {
    return this.answered(key, (node) => node.touch(key, exptimeFor(deadline)));
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
    return this.answered(key, (node) => node.delete(key));
  }

  /**
   * `stats <kind>` (or `stats`) of every server, as name → value. With `upOnly`, of the servers
   * that answer (rejecting only when none does); otherwise every server must answer.
   */
  async stats(kind = '', upOnly = false): Promise<Record<string, string>[]> {
    const all = await Promise.all(
      this.servers.nodes.map((_, index) => {
        const read = () =>
          this.servers.call(index, async (node) =>
            statsOf(await node.cmd(kind ? `stats ${kind}` : 'stats')),
          );
        return upOnly ? this.unlessDown(read, null) : read();
      }),
    );
    return all.filter((stats) => stats !== null);
  }

  private on<T>(key: string, work: (node: MemcachedNode) => Promise<T>): Promise<T> {
    return this.servers.call(this.servers.indexOf(key, this.failover), work);
  }

  /** True when `work` succeeded, false when memcached answered `NOT_FOUND`/`NOT_STORED`/`EXISTS`. */
  private async answered(
    key: string,
    work: (node: MemcachedNode) => Promise<unknown>,
  ): Promise<boolean> {
    try {
      await this.on(key, work);
      return true;
    } catch (error) {
      answerOf(error);
      return false;
    }
  }

  private async casRaw(
    key: string,
    value: Buffer,
    cas: string,
    lifetime: number,
  ): Promise<CasResult> {
    try {
      await this.on(key, (node) => node.cas(key, value, { lifetime, casUniq: cas }));
      return 'stored';
    } catch (error) {
      return answerOf(error) === 'EXISTS' ? 'exists' : 'missing';
    }
  }

  /** A value memcached would refuse (item_size_max) fails here, with a message that says so. */
  private checkSize(key: string, value: Buffer): void {
    // memcached counts the item header and key against the limit too; 64 bytes covers the header.
    const limit = this.servers.itemSizeMax;
    if (value.length + Buffer.byteLength(key) + 64 > limit) {
      throw new Error(
        `memcached: an item of ${value.length} bytes would pass the servers' item size limit (${limit} bytes)`,
      );
    }
  }
}

function statsOf(reply: unknown): Record<string, string> {
  const stats: Record<string, string> = {};
  const entries = (reply as { STAT?: unknown } | null)?.STAT;
  if (Array.isArray(entries)) {
    for (const entry of entries as unknown[]) {
      if (Array.isArray(entry) && typeof entry[0] === 'string') {
        stats[entry[0]] = String(entry[1] ?? '');
      }
    }
  }
  return stats;
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
