import { createHash } from 'node:crypto';
import pg, { type Pool, type PoolClient, type QueryResultRow } from 'pg';
import type { MigrationReport } from '../../core/capabilities.js';
import { migrate } from './migrations.js';

/** Rows a sweep deletes per statement, so it never holds many locks for long. */
export const SWEEP_BATCH = 1000;

/**
 * BIGINT columns (epoch milliseconds) as numbers, as the shared row mapping reads them; every
 * other type as pg parses it. Set per query, so the app's own pg type parsers are left alone.
 */
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: (oid, format) =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format),
};

/**
 * One latchkey schema on a pool: table and statement names, and the ways every role runs its
 * SQL (a statement, a transaction, a batched sweep), each after the schema is migrated.
 */
export class PostgresDatabase {
  readonly tables: {
    readonly sessions: string;
    readonly users: string;
    readonly attempts: string;
    readonly remember: string;
    readonly factors: string;
  };
  /** Prefix of prepared-statement names: under 64 bytes in all, and different per schema. */
  readonly names: string;
  private migration: Promise<MigrationReport> | null = null;
  private isMigrated = false;
  /**
   * For the 'error' a pool or a checked-out client emits when the server kills its connection:
   * the call in flight reports the failure; unheard, the event would crash the process.
   */
  readonly ignoreError = (): void => {};

  constructor(
    readonly pool: Pool,
    readonly schema: string,
  ) {
    const s = `"${schema}"`;
    this.tables = {
      sessions: `${s}.latchkey_sessions`,
      users: `${s}.latchkey_users`,
      attempts: `${s}.latchkey_attempts`,
      remember: `${s}.latchkey_remember`,
      factors: `${s}.latchkey_factors`,
    };
    this.names = `lk_${createHash('sha256').update(schema).digest('hex').slice(0, 10)}_`;
  }

  /** Applies pending migrations once (retried after a failure); gives what was done. */
  migrations(): Promise<MigrationReport> {
    if (!this.migration) {
      this.migration = migrate(this.pool, { schema: this.schema }).then(
        (report) => {
          this.isMigrated = true;
          return report;
        },
        (error: unknown) => {
          this.migration = null;
          throw error;
        },
      );
    }
    return this.migration;
  }

  /** True once the schema is up to date: from then on, statements run without waiting. */
  get migrated(): boolean {
    return this.isMigrated;
  }

  /** Runs one statement on the pool, BIGINTs read as numbers. */
  async query<R extends QueryResultRow = QueryResultRow>(
    config: pg.QueryConfig,
  ): Promise<pg.QueryResult<R>> {
    if (!this.migrated) await this.migrations();
    return this.pool.query<R>({ ...config, types: TYPES });
  }

  /** Runs one statement on the pool and gives its rows as arrays, BIGINTs read as numbers. */
  async arrays(config: pg.QueryArrayConfig): Promise<unknown[][]> {
    if (!this.migrated) await this.migrations();
    return (await this.pool.query<unknown[]>({ ...config, types: TYPES })).rows;
  }

  /**
   * Runs `work` in a transaction on one pooled client. A client whose connection failed is
   * destroyed rather than returned to the pool.
   */
  async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    if (!this.migrated) await this.migrations();
    const client = await this.pool.connect();
    client.on('error', this.ignoreError);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollback: unknown) => {
        broken = rollback instanceof Error ? rollback : new Error(String(rollback));
      });
      throw error;
    } finally {
      client.off('error', this.ignoreError);
      client.release(broken);
    }
  }

  /**
   * Batch-deletes rows of `table` whose `column <= now` (each batch its own short statement,
   * locked rows skipped); gives how many.
   */
  async sweep(
    label: string,
    table: string,
    key: string,
    column: string,
    now: number,
  ): Promise<number> {
    let total = 0;
    for (;;) {
      const { rowCount } = await this.query({
        name: `${this.names}sweep-${label}`,
        text: `DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table}
                 WHERE ${column} <= $1 LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)
               AND ${column} <= $1`,
        values: [now],
      });
      total += rowCount ?? 0;
      if (!rowCount) return total;
    }
  }

  /**
   * Runs `work` only when no other process is sweeping this schema, and gives its result; gives
   * null without running it when another holds the lock. The lock is a session-level
   * `pg_try_advisory_lock` on one pooled connection, never waited for; `work`'s own batches run
   * on other connections, so the lock blocks no session, user or throttle statement.
   */
  async exclusive<T>(work: () => Promise<T>): Promise<T | null> {
    if (!this.migrated) await this.migrations();
    const key = `latchkey sweep ${this.schema}`;
    const client = await this.pool.connect();
    client.on('error', this.ignoreError);
    let broken: Error | undefined;
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [key],
      );
      if (rows[0]?.locked !== true) return null;
      try {
        return await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      }
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      client.off('error', this.ignoreError);
      // A connection that failed may still hold the lock: destroy it (which drops the lock).
      client.release(broken);
    }
  }
}
