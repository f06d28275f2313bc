import { randomBytes } from 'node:crypto';
import pg, { type Notification, type Pool } from 'pg';
import type { SessionCache } from './cache.js';

// The LISTEN/NOTIFY protocol that keeps validation caches in every process in step. Each write
// that changes or removes a session sends, in the same statement, `NOTIFY latchkey.<schema>` with
// `<nonce> d <id>` (one session), `<nonce> u <userId>` (all of a user's) or `<nonce> x <now>`
// (those dead at now). A cache drops its copies as it hears one, then acknowledges on the
// writer's own channel `latchkey.ack.<instance>`; the writer resolves once all have answered.
// A cache serves only while its own heartbeat, a NOTIFY on its acknowledgement channel, has come
// back through LISTEN within `maxStaleness`: notifications arrive in commit order, so one that
// comes back proves every earlier one arrived.

/** A LISTEN connection whose query gets no answer within this is replaced. */
const LISTENER_QUERY_TIMEOUT_MS = 2000;

/**
 * The number of caches listening on the schema's channel, as a column named `listeners`. NOTIFY
 * stays inside one database, so caches of the same schema name in other databases never answer
 * and must not be waited for.
 */
export const LISTENERS = (parameter: string): string =>
  `(SELECT count(*)::int FROM pg_stat_activity WHERE application_name = ${parameter} AND datname = current_database()) AS listeners`;

/** How many caches a statement that NOTIFYs per row reached (0 when it sent nothing). */
export function notifiedBy(result: pg.QueryResult): number {
  const row = result.rows[0] as { listeners?: number } | undefined;
  return row?.listeners ?? 0;
}

/** A write waiting to hear from `expected` caches. */
interface Waiter {
  heard: number;
  expected: number;
  done(): void;
}

/**
 * This store's end of the protocol: the channel its writes notify, and, with a cache, the LISTEN
 * connection that feeds it (reconnected after any failure, the cache off meanwhile) and the
 * acknowledgements its own writes wait for.
 */
export class Invalidations {
  /** Where session writes send their NOTIFY. */
  readonly channel: string;
  /** The `application_name` of LISTEN connections: how writers count the caches to hear from. */
  readonly listenerName: string;
  private readonly ackChannel: string;
  private readonly instance = randomBytes(6).toString('base64url');
  private sequence = 0;
  /** Writes waiting for the caches' acknowledgements, by nonce. */
  private readonly waiters = new Map<string, Waiter>();
  private listener: pg.Client | null = null;
  private listenerRetries = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The heartbeat on its way through LISTEN: its payload and when it was sent. */
  private beat: { payload: string; sentAt: number } | null = null;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    schema: string,
    private readonly cache: SessionCache | null,
  ) {
    this.channel = `latchkey.${schema}`;
    this.ackChannel = `latchkey.ack.${this.instance}`;
    this.listenerName = `latchkey cache ${schema}`;
    if (cache) this.listen(cache);
  }

  /**
   * Runs a write that sends NOTIFY tagged with a fresh nonce and resolves only once every cache
   * listening when it committed has dropped its copies and said so: our own LISTEN connection
   * hears the NOTIFY, every other one answers on our acknowledgement channel. `listeners(result)`
   * is how many were listening (0: nothing was sent). A cache that does not answer within
   * `maxStaleness` (a hung process, a frozen connection) has stopped serving by then, for its
   * last proof is older than that (when every process uses the same `maxStaleness`). So a request
   * that follows the write, in any process, never finds the old record in a cache. A writer
   * without an active cache does not wait: its nonce "-" asks for no acknowledgements.
   */
  async acknowledged<T>(
    write: (nonce: string) => Promise<T>,
    listeners: (result: T) => number,
  ): Promise<T> {
    const cache = this.cache;
    if (!cache?.active) return write('-');
    this.sequence = (this.sequence + 1) % Number.MAX_SAFE_INTEGER;
    const nonce = `${this.instance}.${this.sequence}`;
    let timer: NodeJS.Timeout | undefined;
    const waiter: Waiter = { heard: 0, expected: Number.POSITIVE_INFINITY, done: () => {} };
    // Registered before the write: answers may be read before the write's own reply.
    const all = new Promise<void>((resolve) => {
      waiter.done = () => {
        clearTimeout(timer);
        this.waiters.delete(nonce);
        resolve();
      };
    });
    this.waiters.set(nonce, waiter);
    try {
      const result = await write(nonce);
      waiter.expected = listeners(result);
      if (waiter.heard < waiter.expected) {
        // A cache that never answers delays this write until it has stopped serving, no longer.
        timer = setTimeout(waiter.done, cache.maxStaleness);
        await all;
      }
      return result;
    } finally {
      waiter.done();
    }
  }

  /** Stops listening and releases every write still waiting. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    this.cache?.reset(false);
    this.releaseWaiters();
    const listener = this.listener;
    this.listener = null;
    if (listener) await listener.end().catch(() => {});
  }

  private heard(nonce: string): void {
    const waiter = this.waiters.get(nonce);
    if (!waiter) return;
    waiter.heard++;
    if (waiter.heard >= waiter.expected) waiter.done();
  }

  private releaseWaiters(): void {
    for (const waiter of [...this.waiters.values()]) waiter.done();
  }

  /** Opens the LISTEN connection; on any failure, turns the cache off and tries again later. */
  private listen(cache: SessionCache): void {
    if (this.closed) return;
    // The pool hides its password from enumeration, so it is copied by name.
    const client = new pg.Client({
      ...this.pool.options,
      password: this.pool.options.password,
      keepAlive: true,
      query_timeout: LISTENER_QUERY_TIMEOUT_MS,
    });
    this.listener = client;
    let down = false;
    const lost = (): void => {
      if (down) return;
      down = true;
      clearInterval(this.heartbeat);
      this.beat = null;
      cache.reset(false);
      this.releaseWaiters();
      if (this.listener === client) this.listener = null;
      client.end().catch(() => {});
      if (this.closed) return;
      const delay = Math.min(50 * 2 ** this.listenerRetries++, 2000);
      this.reconnectTimer = setTimeout(() => this.listen(cache), delay);
      this.reconnectTimer.unref();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (message) => this.onNotification(client, cache, message));
    client
      .connect()
      .then(() =>
        // The keepalive settings let the server drop us soon if this process dies silently, so
        // writers stop counting (and waiting for) a cache that is gone.
        client.query(`LISTEN "${this.channel}"; LISTEN "${this.ackChannel}";
          SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;
          SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000;
          SET application_name = '${this.listenerName}'`),
      )
      .then(() => {
        if (down || this.closed) return;
        this.listenerRetries = 0;
        // Only now is every later invalidation sure to reach us: start from empty.
        cache.reset(true);
        let beats = 0;
        const beat = (): void => {
          // One at a time: an unanswered one means the cache lapses, then the query times out.
          if (this.beat) return;
          const payload = `alive.${++beats}`;
          this.beat = { payload, sentAt: performance.now() };
          client.query('SELECT pg_notify($1, $2)', [this.ackChannel, payload]).catch(lost);
        };
        beat();
        this.heartbeat = setInterval(beat, Math.max(5, Math.floor(cache.maxStaleness / 4)));
        this.heartbeat.unref();
      })
      .catch(lost);
  }

  private onNotification(client: pg.Client, cache: SessionCache, message: Notification): void {
    const payload = message.payload ?? '';
    if (message.channel === this.ackChannel) {
      const beat = this.beat;
      if (beat?.payload === payload) {
        this.beat = null;
        cache.proven(beat.sentAt);
      } else {
        this.heard(payload);
      }
      return;
    }
    const [nonce, kind] = payload.split(' ', 2);
    if (nonce === undefined || kind === undefined) return;
    const argument = payload.slice(nonce.length + kind.length + 2);
    if (kind === 'd') cache.invalidate(argument);
    else if (kind === 'u') cache.invalidateUser(argument);
    else if (kind === 'x') cache.invalidateDeadAt(Number(argument));
    const writer = nonce.slice(0, Math.max(0, nonce.indexOf('.')));
    if (writer === this.instance) this.heard(nonce);
    else if (writer !== '') {
      // Dropped above, synchronously: only now may the writer's caller go on.
      client.query('SELECT pg_notify($1, $2)', [`latchkey.ack.${writer}`, nonce]).catch(() => {});
    }
  }
}
