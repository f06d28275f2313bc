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

/** How long a server that failed is left alone before the store tries it again. */
export const RETRY_DOWN_MS = 1000;

/** A call for a key whose server is down (marked down, or failing now). */
export class ServerDownError extends Error {
  override name = 'ServerDownError';
  constructor(
    readonly index: number,
    readonly server: string,
    cause?: unknown,
  ) {
    super(
      `memcached ${server} is down${cause instanceof Error ? `: ${cause.message}` : ''}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * Whether memcache-client failed for the connection (refused, reset, closed, connect or command
 * timeout) rather than with a server reply (`NOT_FOUND`, `SERVER_ERROR …`), which carries tokens.
 */
function isOutage(error: unknown): boolean {
  return error instanceof Error && !Array.isArray((error as { cmdTokens?: unknown }).cmdTokens);
}

interface Health {
  down: boolean;
  /** The store answered for this server while it was down: flush it before using it again. */
  servedWhileDown: boolean;
  /** The {@link MemcachedServers.answers} count at its last answer. */
  lastAnswer: number;
  probe: NodeJS.Timeout | null;
}

export interface ServerSettings {
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  readonly maxConnections: number;
}

/**
 * The configured servers, each with its health. A call that fails for the connection marks its
 * server down: calls for it then fail at once (no connect timeout per request) while a probe
 * every {@link RETRY_DOWN_MS} waits for it to answer. A server the store answered for while it
 * was down (a key on it read as "no record") is flushed (`flush_all`) before it is used again, so
 * nothing deleted meanwhile (a revoked session) can come back.
 */
export class MemcachedServers {
  readonly nodes: readonly MemcachedNode[];
  /** The item size limit the servers enforce (the smallest `item_size_max`), once read. */
  itemSizeMax = 1_048_576;
  /** Answers received from any server so far: a clock that orders answers and failures. */
  answers = 0;
  private readonly health: Health[];
  private closed = false;

  constructor(
    readonly addresses: readonly string[],
    settings: ServerSettings,
    nodes?: readonly MemcachedNode[],
  ) {
    this.nodes =
      nodes ??
      addresses.map(
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
    this.health = addresses.map(() => ({
      down: false,
      servedWhileDown: false,
      lastAnswer: 0,
      probe: null,
    }));
  }

  /**
   * The server of `key`: the highest rendezvous score over ALL configured servers, so a key never
   * moves while a server is down. With `failover`, the best-scoring server that is up (counters,
   * which may restart but must keep counting).
   */
  indexOf(key: string, failover = false): number {
    if (this.nodes.length === 1) return 0;
    let home = 0;
    let homeScore = -1;
    let live = -1;
    let liveScore = -1;
    for (let i = 0; i < this.nodes.length; i++) {
      const score = createHash('md5')
        .update(`${this.addresses[i]}\n${key}`)
        .digest()
        .readUInt32BE(0);
      if (score > homeScore) {
        home = i;
        homeScore = score;
      }
      if (!this.health[i]?.down && score > liveScore) {
        live = i;
        liveScore = score;
      }
    }
    if (!failover || live < 0 || live === home) return home;
    this.servedFor(home);
    return live;
  }

  isUp(index: number): boolean {
    return this.health[index]?.down === false;
  }

  /** Whether any server is marked up. */
  anyUp(): boolean {
    return this.health.some((health) => !health.down);
  }

  /**
   * Whether a server other than `index` answers: one answered since {@link answers} was `since`,
   * or one asked now. Only then may a key on a server that is down read as "no record": with
   * none answering, that would log users out during a full outage instead of failing closed.
   */
  async anotherAnswers(index: number, since: number): Promise<boolean> {
    const others = this.health.map((_, i) => i).filter((i) => i !== index && this.isUp(i));
    if (others.some((i) => (this.health[i] as Health).lastAnswer > since)) return true;
    for (const other of others) {
      try {
        await this.call(other, (node) => node.cmd('version'));
        return true;
      } catch {
        // Marked down now; try the next.
      }
    }
    return false;
  }

  /** Notes that a call for server `index` was answered while it was down (see the class doc). */
  servedFor(index: number): void {
    const health = this.health[index];
    if (health?.down) health.servedWhileDown = true;
  }

  /** Runs `work` on server `index`, or throws {@link ServerDownError} when it is (or goes) down. */
  async call<T>(index: number, work: (node: MemcachedNode) => Promise<T>): Promise<T> {
    const health = this.health[index] as Health;
    const address = this.addresses[index] as string;
    if (health.down) throw new ServerDownError(index, address);
    try {
      const result = await work(this.nodes[index] as MemcachedNode);
      health.lastAnswer = ++this.answers;
      return result;
    } catch (error) {
      if (!isOutage(error)) {
        health.lastAnswer = ++this.answers; // a reply (`NOT_FOUND`, …) is an answer too
        throw error;
      }
      this.markDown(index);
      throw new ServerDownError(index, address, error);
    }
  }

  close(): void {
    this.closed = true;
    for (const health of this.health) if (health.probe) clearTimeout(health.probe);
    for (const node of this.nodes) node.shutdown();
  }

  private markDown(index: number): void {
    const health = this.health[index] as Health;
    if (health.down || this.closed) return;
    health.down = true;
    health.servedWhileDown = false;
    this.scheduleProbe(index);
  }

  private scheduleProbe(index: number): void {
    const health = this.health[index] as Health;
    const node = this.nodes[index] as MemcachedNode;
    health.probe = setTimeout(async () => {
      health.probe = null;
      try {
        await node.cmd('version');
        if (health.servedWhileDown) await node.cmd('flush_all');
        health.down = false;
      } catch {
        if (!this.closed) this.scheduleProbe(index);
      }
    }, RETRY_DOWN_MS);
    health.probe.unref();
  }
}
