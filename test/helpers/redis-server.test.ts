import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivateRedis, redisServerUnavailable, serverPid } from './redis-server.js';

const unavailable = await redisServerUnavailable();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(unavailable !== null && process.env.LATCHKEY_REQUIRE_SERVICES !== '1')(
  'PrivateRedis: a test only ever talks to its own redis-server',
  () => {
    it('the server answering on its port is its own child', async () => {
      const redis = await PrivateRedis.start(['--appendonly', 'no']);
      cleanups.push(() => redis.destroy());
      expect(redis.pid).not.toBeNull();
      expect(await serverPid(redis.url)).toBe(redis.pid);
    });

    it('refuses to restart on a port another redis-server took meanwhile', async () => {
      const redis = await PrivateRedis.start(['--appendonly', 'no']);
      cleanups.push(() => redis.destroy());
      await redis.stop();
      const squatter = spawn(
        'redis-server',
        ['--port', String(redis.port), '--bind', '127.0.0.1', '--save', ''],
        { stdio: 'ignore' },
      );
      const gone = new Promise((resolve) => squatter.once('exit', resolve));
      cleanups.push(async () => {
        squatter.kill('SIGTERM');
        await gone;
      });
      await expect.poll(() => serverPid(redis.url)).toBe(squatter.pid);
      await expect(redis.resume()).rejects.toThrow(/taken by another process/);
      squatter.kill('SIGTERM');
      await gone;
      await redis.resume();
      expect(await serverPid(redis.url)).toBe(redis.pid);
    });
  },
);
