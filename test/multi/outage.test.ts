import { afterEach, describe, expect, it } from 'vitest';
import { PrivateRedis, redisServerUnavailable } from '../helpers/redis-server.js';
import {
  type Answer,
  addStoreUser,
  apiLogin,
  apiMe,
  call,
  page,
  Servers,
  sessionCookie,
  skipOrFail,
} from './http.js';

/**
 * `latchkey serve --store redis://…` while its Redis (append-only file on) goes away and comes
 * back on the same port: every answer that needs the store is a 503 with Retry-After in between
 * (never "logged in", never "logged out"), and the same server process recovers by itself, with
 * the sessions made before the outage still valid.
 */

const PASSWORD = 'correct horse battery staple';

const servers = new Servers();
let redis: PrivateRedis | null = null;
afterEach(async () => {
  await servers.stopAll();
  await redis?.destroy();
  redis = null;
});

function expectUnavailable(answer: Answer, what: string): void {
  expect(answer.status, `${what}: ${answer.body}`).toBe(503);
  expect(answer.headers['retry-after'], what).toMatch(/^[1-9]\d*$/);
  expect(answer.headers['set-cookie'], `${what} must not touch the cookie`).toBeUndefined();
}

/** Asks until `ask` answers `status`; gives how long that took. Fails after `withinMs`. */
async function until(ask: () => Promise<Answer>, status: number, withinMs: number) {
  const started = Date.now();
  const seen = new Set<number>();
  for (;;) {
    const answer = await ask();
    if (answer.status === status) return { ms: Date.now() - started, seen };
    seen.add(answer.status);
    if (Date.now() - started > withinMs) {
      throw new Error(`no ${status} within ${withinMs} ms (saw ${[...seen].join(', ')})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('latchkey serve through a Redis outage', () => {
  for (const cache of [false, true]) {
    it(`answers 503 + Retry-After while Redis is down and recovers without a restart${cache ? ' (validation cache on)' : ''}`, {
      timeout: 60_000,
    }, async (context) => {
      skipOrFail(await redisServerUnavailable(), context);
      redis = await PrivateRedis.start();
      await addStoreUser(redis.url, 'ada', PASSWORD);
      const server = await servers.start(['--store', redis.url, ...(cache ? ['--cache'] : [])]);
      const { url } = server;

      const login = await apiLogin(url, 'ada', PASSWORD);
      expect(login.status, login.body).toBe(200);
      const cookie = sessionCookie(login);
      // Twice each: with the cache on, the second answer comes from the cache.
      for (let i = 0; i < 2; i++) {
        expect((await apiMe(url, cookie)).status).toBe(200);
        expect((await page(`${url}/dashboard`, cookie)).status).toBe(200);
      }
      expect((await call(`${url}/readyz`)).status).toBe(200);

      await redis.stop();
      const down = Date.now();
      // The very first requests after the stop already fail closed, and keep doing so.
      for (let i = 0; i < 3; i++) {
        expectUnavailable(await apiMe(url, cookie), `GET /api/me #${i}`);
        expectUnavailable(await page(`${url}/dashboard`, cookie), `GET /dashboard #${i}`);
        expectUnavailable(await call(`${url}/readyz`), `GET /readyz #${i}`);
        expectUnavailable(await apiLogin(url, 'ada', PASSWORD), `POST /api/login #${i}`);
      }
      const failedIn = Date.now() - down;
      // No offline queue: the 12 answers above came at once, not after a connect timeout each.
      expect(failedIn).toBeLessThan(2000);
      expect(server.child.exitCode, 'latchkey must keep running').toBeNull();

      await redis.resume();
      const back = await until(() => apiMe(url, cookie), 200, 15_000);
      console.info(
        `redis outage${cache ? ' (cache)' : ''}: 12 answers in ${failedIn} ms while down; /api/me 200 again ${back.ms} ms after the restart (meanwhile ${[...back.seen].join(', ') || 'nothing else'})`,
      );
      // While reconnecting, only 503s: never a 401 that would log the user out.
      expect([...back.seen].filter((status) => status !== 503)).toEqual([]);
      const dashboard = await page(`${url}/dashboard`, cookie);
      expect(dashboard.status).toBe(200);
      expect(dashboard.body).toContain('ada');
      expect((await call(`${url}/readyz`)).status).toBe(200);
      const again = await apiLogin(url, 'ada', PASSWORD);
      expect(again.status, again.body).toBe(200);
      expect((await apiMe(url, sessionCookie(again))).status).toBe(200);
      expect((await apiMe(url, cookie)).status).toBe(200);
    });
  }
});
