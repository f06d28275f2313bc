import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';

/** The shared PostgreSQL the tests use unless told otherwise. */
export const POSTGRES_URL =
  process.env.LATCHKEY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema name no other run uses. */
export function randomSchema(): string {
  return `latchkey_test_${randomBytes(6).toString('hex')}`;
}

/** Null when PostgreSQL answers at `url`, else why not. */
export async function postgresUnavailable(url = POSTGRES_URL): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    const reason =
      error instanceof AggregateError
        ? error.errors.map((e) => String((e as Error).message ?? e)).join('; ')
        : error instanceof Error
          ? error.message
          : String(error);
    return `no PostgreSQL at ${url} (${reason})`;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs one statement on a connection of its own (outside any pool a test watches). */
export async function admin<R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** Kills every server process serving `applicationName`; gives how many. */
export async function terminate(applicationName: string): Promise<number> {
  const rows = await admin<{ killed: boolean }>(
    `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
     WHERE application_name = $1 AND pid <> pg_backend_pid()`,
    [applicationName],
  );
  return rows.filter((row) => row.killed).length;
}

/** Skips the test (printing why) when PostgreSQL is absent, or fails when services are required. */
export async function requirePostgres(context: { skip(): void }): Promise<void> {
  const reason = await postgresUnavailable();
  if (!reason) return;
  if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(reason);
  console.warn(`skipping: ${reason}`);
  context.skip();
}

/** A pool whose clients count every query they send (`count()`), as a test sees store traffic. */
export function countingPool(url: string, options: pg.PoolConfig = {}) {
  const pool = new pg.Pool({ connectionString: url, ...options });
  let queries = 0;
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      queries++;
      return query(...args);
    }) as typeof client.query;
  });
  return {
    pool,
    count: () => queries,
    reset: () => {
      queries = 0;
    },
  };
}

/**
 * A TCP relay in front of PostgreSQL that a test can cut (every connection dropped, new ones
 * refused) and restore on the same port: an outage without stopping the shared server.
 */
export class Relay {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Chosen on first start, kept across restarts so clients reconnect to the same address. */
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {}

  static async start(): Promise<Relay> {
    const target = new URL(POSTGRES_URL);
    const relay = new Relay({ host: target.hostname, port: Number(target.port || 5432) });
    await relay.resume();
    return relay;
  }

  /** POSTGRES_URL through the relay, tagged with `applicationName`. */
  url(applicationName: string): string {
    const url = new URL(POSTGRES_URL);
    url.port = String(this.port);
    url.searchParams.set('application_name', applicationName);
    return url.toString();
  }

  async resume(): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = connect(this.target);
      for (const socket of [inbound, outbound]) {
        this.sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          this.sockets.delete(socket);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    this.server = server;
  }

  /** Drops every relayed connection and stops accepting new ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}
