import { runScript, type Script } from './scripts.js';

/**
 * What the store needs from node-redis: a client (`createClient`) or a cluster (`createCluster`)
 * both fit. Reads of a session go through `hGetAll` so node-redis' client-side cache can serve
 * them; everything else is a Lua script, so each step is one atomic command on one hash slot.
 */
export interface RedisConnection {
  hGetAll(key: string): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  readonly isReady: boolean;
  on(event: string, listener: () => void): unknown;
  off?(event: string, listener: () => void): unknown;
  close(): Promise<unknown>;
  destroy(): unknown;
}

/** Sweeps delete at most this many records per script, so no script blocks Redis for long. */
export const SWEEP_BATCH = 500;

/** Where the session hashes live under the prefix (`s:<id>`, see the key layout on RedisStore). */
const SESSION_KEYS = 's:';

/** Does nothing, on the node that holds `KEYS[1]`: its reply is the barrier of {@link Keyspace.run}. */
const BARRIER = 'return 1';

/**
 * The store's keys (all under one prefix) on one connection, shared by its role files: the
 * connection once it has connected, and the scripts run on it.
 */
export class Keyspace {
  private pending: Promise<void> | null;

  /**
   * `firstConnection`: the store's own client connecting, for calls to wait for (at most
   * `connectTimeout` ms). `cached`: validation caches may hold session records (see `run`).
   */
  constructor(
    readonly client: RedisConnection,
    readonly prefix: string,
    firstConnection: Promise<unknown> | null,
    private readonly connectTimeout: number,
    private readonly cached: boolean,
  ) {
    this.pending =
      firstConnection?.then(
        () => {
          this.pending = null;
        },
        () => {},
      ) ?? null;
  }

  /** The connection without waiting once it has connected at least once (the hot path), else null. */
  get ready(): RedisConnection | null {
    return this.pending === null ? this.client : null;
  }

  /** The connection, once it has connected at least once; later outages fail each call at once. */
  async connected(): Promise<RedisConnection> {
    const pending = this.pending;
    if (pending) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Redis did not answer within ${this.connectTimeout} ms`)),
          this.connectTimeout,
        );
      });
      try {
        await Promise.race([pending, timeout]);
      } finally {
        clearTimeout(timer);
      }
    }
    return this.client;
  }

  /**
   * Runs a script. With the cache on, a script on a session key answers only once Redis has sent
   * the invalidations it caused to every caching connection: Redis queues them while it runs the
   * script but may write the script's reply to our socket first, so a process that reads right
   * after our reply could still serve its old copy. A second command sent after that reply runs in
   * a later turn of Redis' event loop, after the queued invalidations have gone out.
   */
  async run(lua: Script, keys: string[], args: string[]): Promise<unknown> {
    const redis = await this.connected();
    const reply = await runScript(redis, lua, keys, args);
    const key = keys[0];
    if (this.cached && key?.startsWith(this.prefix + SESSION_KEYS)) {
      await redis.eval(BARRIER, { keys: [key], arguments: [] });
    }
    return reply;
  }

  key(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** Runs a batch sweep script until a batch comes back empty; gives how many it deleted. */
  async sweep(lua: Script, keys: string[], args: string[]): Promise<number> {
    let total = 0;
    for (;;) {
      const reply = await this.run(lua, keys, [...args, String(SWEEP_BATCH)]);
      const [seen, deleted] = reply as [number, number];
      total += deleted;
      if (seen === 0) return total;
    }
  }
}

interface PingingClient {
  ping(): Promise<unknown>;
}
interface PingingCluster {
  readonly masters: readonly object[];
  nodeClient(node: object): Promise<PingingClient>;
}

/**
 * A PING on every connection the validation cache's invalidations arrive on: the client's own,
 * or each master's for a cluster (node-redis reads from masters unless told to use replicas).
 */
export function pingEveryNode(connection: RedisConnection): () => Promise<unknown> {
  const cluster = connection as unknown as Partial<PingingCluster>;
  if (Array.isArray(cluster.masters) && typeof cluster.nodeClient === 'function') {
    const nodes = cluster as PingingCluster;
    return () =>
      Promise.all(nodes.masters.map(async (node) => (await nodes.nodeClient(node)).ping()));
  }
  const client = connection as unknown as PingingClient;
  return () => client.ping();
}
