import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SessionRecord } from 'latchkey';
import { RedisStore, type RedisStoreOptions } from 'latchkey/stores/redis';
import { createClient } from 'redis';
import { afterEach, beforeEach } from 'vitest';

const run = promisify(execFile);

/** The shared Redis the tests use unless told otherwise. */
export const REDIS_URL = process.env.LATCHKEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A prefix no other run uses. */
export function randomPrefix(): string {
  return `latchkey-test:${randomBytes(6).toString('hex')}:`;
}

/** Null when Redis answers PING at `url`, else why not. */
export async function redisUnavailable(url = REDIS_URL): Promise<string | null> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 1000, reconnectStrategy: false },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (error) {
    return `no Redis at ${url} (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** The process id of the Redis server answering at `url`, or null when none answers. */
export async function serverPid(url: string): Promise<number | null> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 1000, reconnectStrategy: false },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const info = await client.info('server');
    return Number(/^process_id:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
  } catch {
    return null;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** A plain client of its own, to read and write the store's keys behind its back. */
const adminClient = () => createClient({ url: REDIS_URL });

/** What {@link useRedisStore} gives each test. */
export interface RedisFixture {
  readonly store: RedisStore;
  readonly admin: ReturnType<typeof adminClient>;
  readonly prefix: string;
}

/**
 * A fresh store (own prefix) and an admin client on the shared Redis for each test of the
 * enclosing `describe`, both closed and the prefix emptied after it. An absent Redis skips the
 * test with the reason, or fails it under `LATCHKEY_REQUIRE_SERVICES=1`.
 */
export function useRedisStore(options: RedisStoreOptions = {}): () => RedisFixture {
  let fixture: RedisFixture | null = null;
  beforeEach(async (context) => {
    const reason = await redisUnavailable(REDIS_URL);
    if (reason) {
      if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(reason);
      console.warn(`skipping: ${reason}`);
      context.skip();
    }
    const prefix = randomPrefix();
    const store = await RedisStore.connect(REDIS_URL, { ...options, prefix });
    const admin = adminClient();
    await admin.connect();
    fixture = { store, admin, prefix };
  });
  afterEach(async () => {
    if (!fixture) return;
    const { store, admin, prefix } = fixture;
    fixture = null;
    await store.close();
    admin.destroy();
    await deletePrefix(REDIS_URL, prefix);
  });
  return () => {
    if (!fixture) throw new Error('the Redis store is not open');
    return fixture;
  };
}

/** Null when the redis-server binary can be run, else why not. */
export async function redisServerUnavailable(): Promise<string | null> {
  try {
    await run('redis-server', ['--version']);
    await run('redis-cli', ['--version']);
    return null;
  } catch {
    return 'redis-server / redis-cli binaries not found on PATH';
  }
}

/** Deletes every key under `prefix` (UNLINK in batches), on one server. */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  try {
    await unlinkMatching(client, prefix);
  } finally {
    client.destroy();
  }
}

type ScanningClient = {
  scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string[]>;
  unlink(keys: string[]): Promise<unknown>;
};

export async function unlinkMatching(client: ScanningClient, prefix: string): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    // One key per UNLINK: on a cluster node the keys of a batch lie in different slots.
    await Promise.all(keys.map((key) => client.unlink([key])));
  }
}

/** Something that runs a Lua script on the node owning its key (a RedisStore's `client`). */
type ScriptRunner = {
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
};

/**
 * Writes at session key `key` a hash the store cannot decode: every field a session has, but its
 * `record` JSON cut short (as a torn or foreign write leaves it). Expires in a minute.
 */
export async function writeUndecodableSession(redis: ScriptRunner, key: string): Promise<void> {
  const idle = String(Date.now() + 30 * 60_000);
  await redis.eval(
    `redis.call('HSET', KEYS[1], 'record', ARGV[1], 'userId', 'user-1', 'lastSeenAt', ARGV[2], 'idleExpiresAt', ARGV[2])
return redis.call('PEXPIRE', KEYS[1], 60000)`,
    { keys: [key], arguments: ['{"id":"cut short","userId":"user-1","createdAt":', idle] },
  );
}

/** A loopback TCP port nobody listens on (and, for a cluster bus, port + 10000 too). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && port < 55_000) return port;
  }
}

/** A redis-server of its own (own port, own directory, append-only file on), for tests that stop it. */
export class PrivateRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-'));
  private process: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    private readonly extraArgs: string[],
  ) {}

  /** Starts on a free port; a port someone else took first is given up for another. */
  static async start(extraArgs: string[] = []): Promise<PrivateRedis> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new PrivateRedis(await freePort(), extraArgs);
      if (await server.launch()) return server;
      await server.destroy();
    }
    throw new Error('no private redis-server got a port of its own in 5 tries');
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The running child's process id, or null while stopped. */
  get pid(): number | null {
    return this.process?.pid ?? null;
  }

  /** Restarts the server on the same port and directory; resolves once it answers. */
  async resume(): Promise<void> {
    if (!(await this.launch())) {
      throw new Error(
        `port ${this.port} is taken by another process: the private redis-server cannot restart`,
      );
    }
  }

  /**
   * Spawns redis-server on this port. True once the server answering there is this child (`INFO
   * server` gives its process id); false when the child exits (the port was taken) or another
   * server answers, which a test must never mistake for its own.
   */
  private async launch(): Promise<boolean> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      ...this.extraArgs,
    ];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.process = child;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null || child.signalCode !== null) return false;
      const pid = await serverPid(this.url);
      if (pid !== null) {
        if (pid === child.pid) return true;
        child.kill('SIGTERM');
        await exited;
        this.process = null;
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`private redis-server on port ${this.port} did not start`);
  }

  /** Stops the server (SIGTERM: it writes its append-only file first) and waits for the exit. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    this.process = null;
  }

  /** Calls `command` on the server with redis-cli and gives its output. */
  async cli(...command: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', ['-p', String(this.port), ...command]);
    return stdout;
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Three masters, no replicas, from the redis-server binary, each on its own loopback port. */
export class PrivateCluster {
  private constructor(readonly nodes: PrivateRedis[]) {}

  static async start(): Promise<PrivateCluster> {
    const nodes: PrivateRedis[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        nodes.push(
          await PrivateRedis.start([
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '2000',
          ]),
        );
      }
      await run('redis-cli', [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ]);
      const cluster = new PrivateCluster(nodes);
      await cluster.waitUntilOk();
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.destroy()));
      throw error;
    }
  }

  get rootNodes(): { url: string }[] {
    return this.nodes.map((node) => ({ url: node.url }));
  }

  private async waitUntilOk(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const states = await Promise.all(this.nodes.map((node) => node.cli('cluster', 'info')));
      if (states.every((info) => info.includes('cluster_state:ok'))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the private cluster never reached cluster_state:ok');
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.destroy()));
  }
}

/**
 * A session's hash fields as the version before the index buckets wrote them: absolute times
 * `l` `i` `a` `t` and the whole user snapshot in `n`.
 */
export function earlierLayoutFields(session: SessionRecord): Record<string, string> {
  return {
    u: session.userId,
    c: String(session.createdAt),
    l: String(session.lastSeenAt),
    i: String(session.idleExpiresAt),
    a: String(session.absoluteExpiresAt),
    t: String(session.authenticatedAt),
    p: session.ip ?? '',
    g: session.userAgent ?? '',
    n: JSON.stringify(session.user),
  };
}
