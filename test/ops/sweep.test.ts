import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jittered } from '../../src/server/sweep.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { addUser, runCli, tempDir, useServe } from '../helpers/cli.js';
import {
  admin,
  dropSchema,
  POSTGRES_URL,
  randomSchema,
  requirePostgres,
} from '../helpers/postgres-server.js';
import { apiLogin, cookieOf, jsonLines, PASSWORD, sample, waitFor } from './support.js';

const temp = tempDir();
beforeAll(() => addUser(temp.db, 'ada', PASSWORD));
afterAll(() => temp.remove());

const startServe = useServe();

/** Starts a sweep on `store` that holds the lock until `release()`, which gives its result. */
async function holdSweepLock<T>(
  store: PostgresStore,
  result: T,
): Promise<{ release(): Promise<T | null> }> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started!: () => void;
  const inside = new Promise<void>((resolve) => {
    started = resolve;
  });
  const sweeping = store.sweepExclusive(async () => {
    started();
    await held;
    return result;
  });
  await inside;
  return {
    release() {
      release();
      return sweeping;
    },
  };
}

function count(table: string, where = '1 = 1'): number {
  const db = new Database(temp.db, { readonly: true });
  try {
    return db.prepare(`SELECT count(*) FROM ${table} WHERE ${where}`).pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('serve sweeps expired rows', () => {
  it('deletes expired sessions, remember-me tokens and attempt windows on its own', async () => {
    const past = Date.now() - 60_000;
    const db = new Database(temp.db);
    db.prepare(
      'INSERT INTO latchkey_attempts (key, count, window_end, next_allowed_at) VALUES (?, 1, ?, 0)',
    ).run('u:stale', past);
    db.prepare(
      `INSERT INTO latchkey_remember (selector, validator_hash, user_id, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?)`,
    ).run('stale-selector', 'x'.repeat(43), 'nobody', past - 1000, past);
    db.close();

    const server = await startServe([
      '--db',
      temp.db,
      '--idle-timeout',
      '1s',
      '--sweep-interval',
      '300ms',
      '--log-level',
      'debug',
      '--metrics',
    ]);
    for (let i = 0; i < 3; i++) cookieOf(await apiLogin(server.url, 'ada'));
    expect(count('latchkey_sessions')).toBe(3);

    // Nobody touches the sessions again: only the sweeper can delete them.
    await waitFor(() => count('latchkey_sessions') === 0, 'the sweeper to delete 3 sessions', 8000);
    expect(count('latchkey_attempts', "key = 'u:stale'")).toBe(0);
    expect(count('latchkey_remember', "selector = 'stale-selector'")).toBe(0);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(sample(metrics, 'latchkey_swept_rows_total{kind="sessions"}')).toBe(3);
    expect(sample(metrics, 'latchkey_swept_rows_total{kind="remember"}')).toBe(1);
    expect(sample(metrics, 'latchkey_swept_rows_total{kind="attempts"}')).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'latchkey_sweeps_total{result="done"}')).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'latchkey_active_sessions')).toBe(0);
    const sweeps = jsonLines(server.output()).filter((line) => line.msg === 'sweep');
    expect(sweeps.some((line) => line.sessions === 3 || Number(line.sessions) > 0)).toBe(true);
  });

  it('--sweep-interval 0 turns sweeping off', async () => {
    const server = await startServe([
      '--db',
      temp.db,
      '--sweep-interval',
      '0',
      '--idle-timeout',
      '1s',
    ]);
    cookieOf(await apiLogin(server.url, 'ada'));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(count('latchkey_sessions')).toBe(1);
  });

  it('jitters each wait by ±20%', () => {
    expect(jittered(1000, () => 0)).toBe(800);
    expect(jittered(1000, () => 0.5)).toBe(1000);
    expect(jittered(1000, () => 0.999_999)).toBe(1200);
  });
});

describe('PostgreSQL: one sweeper at a time', () => {
  it('sweepExclusive runs the work only where the advisory lock was free', async (context) => {
    await requirePostgres(context);
    const schema = randomSchema();
    const a = await PostgresStore.connect(POSTGRES_URL, { schema });
    const b = await PostgresStore.connect(POSTGRES_URL, { schema });
    try {
      const first = await holdSweepLock(a, 'a swept');
      // While a sweeps, b skips at once (never waits for the lock).
      expect(await b.sweepExclusive(async () => 'b swept')).toBeNull();
      expect(await first.release()).toBe('a swept');
      // Released: the next sweep on either store runs.
      expect(await b.sweepExclusive(async () => b.deleteExpired(Date.now()))).toBe(0);
      // A failing sweep gives the lock back too.
      await expect(
        a.sweepExclusive(async () => {
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await b.sweepExclusive(async () => 'again')).toBe('again');
    } finally {
      await a.close();
      await b.close();
      await dropSchema(schema);
    }
  });

  it('latchkey sweep is the same sweep: it skips while another process holds the lock', async (context) => {
    await requirePostgres(context);
    const database = `latchkey_sweep_${randomBytes(6).toString('hex')}`;
    await admin(`CREATE DATABASE ${database}`);
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${database}`;
    const holder = await PostgresStore.connect(url.toString());
    try {
      const sweeping = await holdSweepLock(holder, null);
      const skipped = await runCli(['sweep', '--store', url.toString()]);
      expect(skipped).toMatchObject({ code: 0, stdout: '0\n' });
      expect(skipped.stderr).toMatch(/another process is sweeping/);
      await sweeping.release();
      const swept = await runCli(['sweep', '--store', url.toString()]);
      expect(swept).toMatchObject({ code: 0, stdout: '0\n', stderr: '' });
    } finally {
      await holder.close();
      await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  });
});
