import { randomBytes } from 'node:crypto';
import type { SessionRecord } from 'latchkey';
import { PostgresStore } from 'latchkey/stores/postgres';
import { afterEach, beforeEach } from 'vitest';
import {
  countingPool,
  dropSchema,
  POSTGRES_URL,
  randomSchema,
  requirePostgres,
} from './postgres-server.js';

export const MINUTE = 60_000;

/**
 * Each test of the file in a schema of its own, dropped after it with everything the test
 * registered in `cleanups` (stores first, newest first). Call once, at the top of a test file.
 */
export function postgresStores() {
  const fixture = {
    schema: '',
    cleanups: [] as (() => Promise<unknown>)[],
    /** A store on a pool of its own (as a separate process would have), closed after the test. */
    async openStore(
      options: {
        cache?: boolean | { maxEntries?: number };
        applicationName?: string;
        maxConnections?: number;
      } = {},
    ) {
      const url = new URL(POSTGRES_URL);
      if (options.applicationName)
        url.searchParams.set('application_name', options.applicationName);
      const counted = countingPool(
        url.toString(),
        options.maxConnections ? { max: options.maxConnections } : {},
      );
      const store = new PostgresStore(counted.pool, {
        schema: fixture.schema,
        ...(options.cache === undefined ? {} : { cache: options.cache }),
      });
      fixture.cleanups.push(async () => {
        await store.close();
        await counted.pool.end();
      });
      await store.migrations();
      if (store.cache) await until(() => store.cache?.active === true);
      return { store, ...counted };
    },
  };
  beforeEach(async (context) => {
    await requirePostgres(context);
    fixture.schema = randomSchema();
  });
  afterEach(async () => {
    for (const cleanup of fixture.cleanups.reverse()) await cleanup();
    fixture.cleanups = [];
    if (fixture.schema) await dropSchema(fixture.schema);
  });
  return fixture;
}

/** Waits for `condition`, polling every 10 ms; the milliseconds it took. */
export async function until(condition: () => boolean, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}

/** A live session record of user `ada`, created now. */
export function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    id: randomBytes(32).toString('base64url'),
    userId: 'ada',
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: now + 30 * MINUTE,
    absoluteExpiresAt: now + 720 * MINUTE,
    authenticatedAt: now,
    aal: 1,
    amr: [],
    ip: null,
    userAgent: null,
    user: {},
    data: {},
    ...overrides,
  };
}
