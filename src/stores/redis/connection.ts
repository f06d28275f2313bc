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

/**
 * The store's keys (all under one prefix) on one connection, shared by its role files: the
 * connection once it has connected, and the scripts run on it.
 */
export class Keyspace {
  private pending: Promise<void> | null;

  /** `firstConnection`: the store's own client connecting, for calls to wait for (at most `connectTimeout` ms). */
  constructor(
    readonly client: RedisConnection,
    readonly prefix: string,
    firstConnection: Promise<unknown> | null,
    private readonly connectTimeout: number,
  ) {
    this.pending =
      firstConnection?.then(
        () => {
          this.pending = null;
        },
        () => {},
      ) ?? null;
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

  async run(lua: Script, keys: string[], args: string[]): Promise<unknown> {
    return runScript(await this.connected(), lua, keys, args);
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
