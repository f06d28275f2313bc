import type {
  AttemptRule,
  DataChange,
  DataUpdate,
  SessionDataPatch,
  SessionIndex,
  SessionPlacement,
  ThrottleDecision,
  ThrottleStore,
} from '../../core/capabilities.js';
import { ConfigError } from '../../core/errors.js';
import type { SessionRecord, SessionStore } from '../../core/store.js';
import { Cluster } from './connection.js';
import { type MemcachedNode, MemcachedServers } from './servers.js';
import { MemcachedSessions } from './sessions.js';
import { MemcachedThrottle } from './throttle.js';

export type { MemcachedNode } from './servers.js';

export interface MemcachedStoreOptions {
  /** Prepended to every key, so several apps (or test runs) share one memcached. Default `"latchkey:"`. */
  prefix?: string;
  /** How long connecting to a server may take before a call fails. Default 2,000 ms. */
  connectTimeout?: number;
  /** How long a command may wait for its reply before it fails. Default 2,000 ms. */
  commandTimeout?: number;
  /** Connections per server (commands are pipelined on each). Default 2. */
  maxConnections?: number;
}

/** What each server said at connect (`stats settings`). */
export interface MemcachedServerInfo {
  readonly server: string;
  /** False when memcached runs with `-M`: it refuses writes when full rather than evicting. */
  readonly evicts: boolean;
  readonly itemSizeMax: number;
  readonly maxBytes: number;
}

/** Server lists warned about already, so a process warns once per deployment. */
const warned = new Set<string>();

/**
 * Sessions and login-attempt windows in memcached (one or more servers, keys spread by
 * rendezvous hashing), on the `memcache-client` driver: the required port, the "session index",
 * "data patch" and "throttle" capabilities. Expiry is memcached's own (no sweep). Not durable:
 * never a store for users or remember-me tokens.
 *
 * Eviction: a server that may evict (no `-M`) can drop a live session (that user is logged out)
 * or a user's index item ("log out everywhere" then misses the sessions it named); never does it
 * make a wrong user's session appear. {@link MemcachedStore.connect} warns once when a server can
 * evict, and {@link MemcachedStore.evictions} reports the count.
 *
 * A server that stops answering (refused, reset, timed out) is marked down for a second at a time:
 * its sessions read as none (logged out, never looked for elsewhere), new session ids are drawn
 * until one lands on a server that is up (the "session id placement" capability), login-attempt
 * windows move to the next server that is up, and a user whose index item is on it cannot list,
 * log out everywhere or log in (a rejection: 503). Before it is used again it is flushed, so
 * nothing revoked meanwhile comes back. Only with every server down does every call reject.
 */
export class MemcachedStore
  implements SessionStore, SessionIndex, SessionDataPatch, SessionPlacement, ThrottleStore
{
  /** The servers, as `host:port`, in the order given. */
  readonly servers: readonly string[];
  /** What each server said at connect, in the order of {@link servers}. */
  info: readonly MemcachedServerInfo[] = [];
  private readonly pool: MemcachedServers;
  private readonly memcached: Cluster;
  private readonly sessions: MemcachedSessions;
  private readonly throttle: MemcachedThrottle;

  /**
   * `servers` is `"host:11211[,host2:11212]"` (a `memcached://` scheme in front is allowed).
   * Prefer {@link MemcachedStore.connect}, which also checks every server answers. `nodes` (one
   * client per server, for tests) replaces the store's own clients. Bad options throw a {@link ConfigError}.
   */
  constructor(servers: string, options: MemcachedStoreOptions = {}, nodes?: MemcachedNode[]) {
    this.servers = serversOf(servers);
    const settings = settingsOf(options);
    if (nodes && nodes.length !== this.servers.length) {
      throw new ConfigError('nodes: give one client per server');
    }
    this.pool = new MemcachedServers(this.servers, settings, nodes);
    this.memcached = new Cluster(this.pool, settings.prefix);
    this.sessions = new MemcachedSessions(this.memcached);
    // A window may restart when its server changes (as after a restart) but must keep counting.
    this.throttle = new MemcachedThrottle(this.memcached.withFailover());
  }

  /**
   * Opens a store on `servers` and waits until every server answers `stats settings`. Warns once
   * (`process.emitWarning`) when a server can evict live sessions.
   */
  static async connect(
    servers: string,
    options: MemcachedStoreOptions = {},
  ): Promise<MemcachedStore> {
    const store = new MemcachedStore(servers, options);
    try {
      await store.readSettings();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** Reads each server's settings (item size limit, eviction); warns once when one can evict. */
  async readSettings(): Promise<readonly MemcachedServerInfo[]> {
    const all = await this.memcached.stats('settings');
    this.info = all.map((stats, i) => ({
      server: this.servers[i] as string,
      evicts: stats.evictions !== 'off',
      itemSizeMax: Number(stats.item_size_max) || 1_048_576,
      maxBytes: Number(stats.maxbytes) || 0,
    }));
    this.pool.itemSizeMax = Math.min(...this.info.map((info) => info.itemSizeMax));
    const evicting = this.info.filter((info) => info.evicts).map((info) => info.server);
    const id = this.servers.join(',');
    if (evicting.length > 0 && !warned.has(id)) {
      warned.add(id);
      process.emitWarning(
        `memcached at ${evicting.join(', ')} may evict live sessions when full (a user is logged out; "log out everywhere" can miss a session whose index entry was evicted). Run memcached with -M and enough memory (-m) to avoid it.`,
        { type: 'LatchkeyWarning', code: 'LATCHKEY_MEMCACHED_EVICTS' },
      );
    }
    return this.info;
  }

  /**
   * Items evicted so far, summed over the servers that answer (`stats` → `evictions`), for
   * /readyz and /metrics; rejects only when none answers.
   */
  async evictions(): Promise<number> {
    const all = await this.memcached.stats('', true);
    return all.reduce((sum, stats) => sum + (Number(stats.evictions) || 0), 0);
  }

  /** The server (`host:port`) that holds a session's record (diagnostics, tests). */
  serverOfSession(id: string): string {
    return this.memcached.serverOf(this.memcached.key(`s:${id}`));
  }

  async close(): Promise<void> {
    this.pool.close();
  }

  // Sessions (the required port, the per-user index and the data patch).

  create(record: SessionRecord): Promise<void> {
    return this.sessions.create(record);
  }
  createCapped(record: SessionRecord, max: number): Promise<boolean> {
    return this.sessions.createCapped(record, max);
  }
  acceptsSessionId(id: string): boolean {
    return this.sessions.acceptsSessionId(id);
  }
  get(id: string): Promise<SessionRecord | null> {
    return this.sessions.get(id);
  }
  touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    return this.sessions.touch(id, lastSeenAt, idleExpiresAt);
  }
  delete(id: string): Promise<boolean> {
    return this.sessions.delete(id);
  }
  updateData(id: string, change: DataChange): Promise<DataUpdate> {
    return this.sessions.updateData(id, change);
  }
  listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    return this.sessions.listByUser(userId, now);
  }
  deleteByUser(userId: string, exceptId?: string): Promise<number> {
    return this.sessions.deleteByUser(userId, exceptId);
  }

  // Login throttle.

  consumeAttempt(key: string, now: number, rule: AttemptRule): Promise<ThrottleDecision> {
    return this.throttle.consumeAttempt(key, now, rule);
  }
  resetAttempts(key: string): Promise<void> {
    return this.throttle.resetAttempts(key);
  }
  deleteExpiredAttempts(now: number): Promise<number> {
    return this.throttle.deleteExpiredAttempts(now);
  }
}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** `"host:port,host2:port2"` as a list of `host:port` (port 11211 when left out). */
function serversOf(servers: unknown): string[] {
  if (typeof servers !== 'string' || servers.trim() === '') {
    throw new ConfigError('servers: must be a string such as "host:11211[,host2:11212]"');
  }
  const list = servers
    .replace(/^memcached:\/\//i, '')
    .split(',')
    .map((entry) => {
      const [host = '', port = '11211', ...rest] = entry.trim().split(':');
      const number = Number(port);
      if (
        !HOST.test(host) ||
        rest.length > 0 ||
        !/^\d+$/.test(port) ||
        number < 1 ||
        number > 65_535
      ) {
        throw new ConfigError(`servers: "${entry.trim()}" is not host:port`);
      }
      return `${host}:${number}`;
    });
  if (new Set(list).size !== list.length)
    throw new ConfigError('servers: a server is listed twice');
  return list;
}

function settingsOf(options: unknown) {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options: must be an object');
  }
  const {
    prefix = 'latchkey:',
    connectTimeout = 2000,
    commandTimeout = 2000,
    maxConnections = 2,
  } = options as MemcachedStoreOptions;
  // memcached keys are at most 250 bytes, with no spaces or control characters.
  if (typeof prefix !== 'string' || !/^[\x21-\x7e]{0,64}$/.test(prefix)) {
    throw new ConfigError('prefix: must be at most 64 printable ASCII characters, no spaces');
  }
  for (const [name, value] of [
    ['connectTimeout', connectTimeout],
    ['commandTimeout', commandTimeout],
  ] as const) {
    if (typeof value !== 'number' || !(value > 0) || value === Infinity) {
      throw new ConfigError(`${name}: must be a number of milliseconds > 0`);
    }
  }
  if (!Number.isInteger(maxConnections) || maxConnections < 1 || maxConnections > 64) {
    throw new ConfigError('maxConnections: must be a whole number from 1 to 64');
  }
  return { prefix, connectTimeout, commandTimeout, maxConnections };
}
