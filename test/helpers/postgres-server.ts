import { randomBytes } from 'node:crypto';
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

/** The shared PostgreSQL's address, for a relay or proxy in front of it. */
export function postgresTarget(): { host: string; port: number } {
  const url = new URL(POSTGRES_URL);
  return { host: url.hostname, port: Number(url.port || 5432) };
}

/** POSTGRES_URL on another local port (a relay's or proxy's), tagged with `applicationName`. */
export function postgresUrlVia(port: number, applicationName?: string): string {
  const url = new URL(POSTGRES_URL);
  url.port = String(port);
  if (applicationName) url.searchParams.set('application_name', applicationName);
  return url.toString();
}
