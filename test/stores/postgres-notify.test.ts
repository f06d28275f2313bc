import type { DataChange, JsonObject } from 'latchkey';
import { PostgresStore } from 'latchkey/stores/postgres';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  admin,
  dropSchema,
  POSTGRES_URL,
  randomSchema,
  requirePostgres,
} from '../helpers/postgres-server.js';
import { record } from '../helpers/postgres-stores.js';

/**
 * The acknowledgement side of the PostgreSQL cache protocol (src/stores/postgres/notify.ts): a
 * write with the cache on waits for every listening cache to say it dropped its copy, but a cache
 * that never answers only delays it (about 1 s), and a writer that loses its own LISTEN
 * connection stops waiting at once.
 */

let schema = '';
let cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async (context) => {
  await requirePostgres(context);
  schema = randomSchema();
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
  if (schema) await dropSchema(schema);
});

async function openStore(cache: boolean): Promise<PostgresStore> {
  const store = await PostgresStore.connect(POSTGRES_URL, { schema, cache });
  cleanups.push(() => store.close());
  if (cache) await vi.waitFor(() => expect(store.cache?.active).toBe(true), { timeout: 10_000 });
  return store;
}

/**
 * A hung cache: counted by writers as a listener of the schema (same `application_name`), hears
 * every invalidation, never acknowledges one.
 */
async function silentListener(): Promise<{ pid: number; heard: () => number }> {
  const client = new pg.Client({
    connectionString: POSTGRES_URL,
    application_name: `latchkey cache ${schema}`,
  });
  client.on('error', () => {});
  let heard = 0;
  client.on('notification', () => {
    heard++;
  });
  await client.connect();
  cleanups.push(() => client.end().catch(() => {}));
  await client.query(`LISTEN "latchkey.${schema}"`);
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return { pid: rows[0]?.pid as number, heard: () => heard };
}

function change(set: JsonObject): DataChange {
  return { set, remove: [], maxBytes: 4096 };
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

describe('PostgreSQL NOTIFY acknowledgements', () => {
  it('with every cache answering, a write waits for no timeout', async () => {
    const [writer] = await Promise.all([openStore(true), openStore(true)]);
    const session = record();
    await writer.create(session);
    const { ms } = await timed(() => writer.updateData(session.id, change({ step: 1 })));
    expect(ms).toBeLessThan(900);
  });

  it('a listener that never acknowledges delays a write by the 1 s timeout, not more, and the data is right', async () => {
    const writer = await openStore(true);
    const reader = await openStore(false);
    const session = record();
    await writer.create(session);
    expect((await writer.get(session.id))?.data).toEqual({});
    const hung = await silentListener();

    const update = await timed(() => writer.updateData(session.id, change({ step: 2 })));
    expect(update.value).toBe('updated');
    expect(update.ms).toBeGreaterThanOrEqual(950);
    expect(update.ms).toBeLessThan(3000);
    expect(hung.heard()).toBeGreaterThan(0);
    // The write is done: every store reads the new data, the writer's own cache included.
    expect((await reader.get(session.id))?.data).toEqual({ step: 2 });
    expect((await writer.get(session.id))?.data).toEqual({ step: 2 });

    const removal = await timed(() => writer.delete(session.id));
    expect(removal.ms).toBeGreaterThanOrEqual(950);
    expect(removal.ms).toBeLessThan(3000);
    expect(await reader.get(session.id)).toBeNull();
    expect(await writer.get(session.id)).toBeNull();
  });

  it('losing the writer’s LISTEN connection releases a waiting write at once', async () => {
    const writer = await openStore(true);
    const session = record();
    await writer.create(session);
    const hung = await silentListener();
    const before = hung.heard();

    const started = performance.now();
    let finishedAt = 0;
    const update = writer.updateData(session.id, change({ step: 3 })).then((result) => {
      finishedAt = performance.now();
      return result;
    });
    // The write has committed (the hung listener heard it) and now waits for its answer.
    await vi.waitFor(() => expect(hung.heard()).toBeGreaterThan(before), { interval: 5 });
    const [own] = await admin<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> $2',
      [`latchkey cache ${schema}`, hung.pid],
    );
    expect(own).toBeDefined();
    expect(finishedAt).toBe(0);
    const killedAt = performance.now();
    await admin('SELECT pg_terminate_backend($1)', [own?.pid]);
    expect(await update).toBe('updated');
    expect(finishedAt - killedAt).toBeLessThan(500);
    expect(finishedAt - started).toBeLessThan(950);
    // With its LISTEN connection gone the cache is off (it may have missed invalidations).
    expect(writer.cache?.active).toBe(false);
    expect((await writer.get(session.id))?.data).toEqual({ step: 3 });
  });
});
