/**
 * Item 34 (and the "without hashing" half of item 31): the only timing assertions in the suite.
 * Unknown user vs wrong password over POST /api/login, interleaved, each from its own client
 * address and (for wrong passwords) spread over many existing accounts so no throttle kicks in.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freshIp,
  median,
  type SecurityServer,
  startServer,
  strongPassword,
  uniqueName,
} from './support.js';

const SAMPLES = 200;
const SIGNUP_SAMPLES = 80;
let server: SecurityServer;
const accounts: string[] = [];

beforeAll(async () => {
  server = await startServer();
  const names = Array.from({ length: SAMPLES / 2 }, () => uniqueName('timing'));
  // Two sign-ups at a time: argon2 hashing is the cost, and the machine has two cores.
  for (let i = 0; i < names.length; i += 2) {
    await Promise.all(
      names.slice(i, i + 2).map((name) => server.browser().signup(name, strongPassword())),
    );
  }
  accounts.push(...names);
}, 120_000);
afterAll(() => server?.stop());

async function timedLogin(
  username: string,
  password: string,
  path = '/api/login',
): Promise<{ ms: number; status: number }> {
  const body = JSON.stringify({ username, password });
  const start = performance.now();
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      origin: server.origin,
      'x-forwarded-for': freshIp(),
    },
    body,
  });
  await response.arrayBuffer();
  return { ms: performance.now() - start, status: response.status };
}

describe('timing', () => {
  it('34: unknown user and wrong password take the same time (medians within 5%, 200 samples each)', async () => {
    // Warm-up: the dummy hash for unknown users is made on first use.
    for (let i = 0; i < 5; i++) {
      await timedLogin(uniqueName('warm'), 'warm-up-password');
      await timedLogin(accounts[i] as string, 'warm-up-password');
    }
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const account = accounts[i % accounts.length] as string;
      const runUnknown = () => timedLogin(uniqueName('ghost'), `wrong-password-${i}`);
      const runWrong = () => timedLogin(account, `wrong-password-${i}`);
      // Alternate which goes first, so drift affects both alike.
      const pair = i % 2 === 0 ? [runUnknown, runWrong] : [runWrong, runUnknown];
      for (const run of pair) {
        const result = await run();
        expect(result.status).toBe(401);
        (run === runUnknown ? unknown : wrong).push(result.ms);
      }
    }
    const mu = median(unknown);
    const mw = median(wrong);
    const gap = Math.abs(mu - mw) / Math.min(mu, mw);
    // The same gap estimated from back-to-back pairs: load from other test files running on the
    // same two cores drifts over seconds and hits both requests of a pair alike.
    const paired = Math.abs(median(unknown.map((u, i) => u - (wrong[i] as number)))) / mw;
    console.info(
      `34: median unknown ${mu.toFixed(2)} ms, wrong password ${mw.toFixed(2)} ms, gap ${(gap * 100).toFixed(2)}%, paired gap ${(paired * 100).toFixed(2)}% (${SAMPLES} samples each)`,
    );
    expect(unknown).toHaveLength(SAMPLES);
    expect(wrong).toHaveLength(SAMPLES);
    expect(gap).toBeLessThan(0.05);
    expect(paired).toBeLessThan(0.05);
  }, 120_000);

  it('12.4: a taken username costs a sign-up as much time as a free one (no less than 5% under it, 80 samples each)', async () => {
    // One strong password for every sign-up: the strength estimate's cost varies with the
    // password, and the comparison is of what the server does with the name.
    const password = strongPassword();
    const timedSignup = async (username: string) => {
      const body = JSON.stringify({ username, password });
      const start = performance.now();
      const response = await fetch(`${server.url}/api/signup`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          origin: server.origin,
          'x-forwarded-for': freshIp(),
        },
        body,
      });
      await response.arrayBuffer();
      return { ms: performance.now() - start, status: response.status };
    };
    await timedSignup(uniqueName('warm'));
    await timedSignup(accounts[0] as string);
    const taken: number[] = [];
    const free: number[] = [];
    // 80 pairs: with the 100 sign-ups of beforeAll this stays under the global sign-up rate.
    for (let i = 0; i < SIGNUP_SAMPLES; i++) {
      const runTaken = () => timedSignup(accounts[i % accounts.length] as string);
      const runFree = () => timedSignup(uniqueName('fresh'));
      const pair = i % 2 === 0 ? [runTaken, runFree] : [runFree, runTaken];
      for (const run of pair) {
        const result = await run();
        expect(result.status).toBe(run === runTaken ? 409 : 201);
        (run === runTaken ? taken : free).push(result.ms);
      }
    }
    // One-sided: what must not happen is a taken name answering cheaper (enumeration at wire
    // speed). A free one also writes the account and its session, about 2 ms over the hash here,
    // so it may be the slower one; the answer's status says "taken" anyway.
    const mt = median(taken);
    const mf = median(free);
    const shortfall = (mf - mt) / mf;
    const pairedShortfall = median(free.map((f, i) => f - (taken[i] as number))) / mf;
    console.info(
      `12.4: median sign-up taken ${mt.toFixed(2)} ms, free ${mf.toFixed(2)} ms, taken under free by ${(shortfall * 100).toFixed(2)}% (paired ${(pairedShortfall * 100).toFixed(2)}%; ${SIGNUP_SAMPLES} samples each)`,
    );
    expect(shortfall).toBeLessThan(0.05);
    expect(pairedShortfall).toBeLessThan(0.05);
  }, 120_000);

  it('31: a 1 MB (or 1,025-character) password is refused without hashing: the server spends far less than one verification on it', async () => {
    const account = accounts[0] as string;
    const verify: number[] = [];
    const huge: number[] = [];
    const long: number[] = [];
    // The same 1 MB sent to a route that reads nothing: what the transfer alone costs over
    // loopback (about one verification on this machine), so the comparison is of server work.
    const transfer: number[] = [];
    for (let i = 0; i < 15; i++) {
      verify.push((await timedLogin(uniqueName('ghost'), `wrong-password-${i}`)).ms);
      const nowhere = await timedLogin(account, 'h'.repeat(1024 * 1024), '/api/no-such-route');
      expect(nowhere.status).toBe(404);
      transfer.push(nowhere.ms);
      const big = await timedLogin(account, 'h'.repeat(1024 * 1024));
      expect([400, 413]).toContain(big.status);
      huge.push(big.ms);
      const over = await timedLogin(account, 'o'.repeat(1025));
      expect(over.status).toBe(400);
      long.push(over.ms);
    }
    console.info(
      `31: median verification ${median(verify).toFixed(2)} ms, 1 MB ${median(huge).toFixed(2)} ms (its transfer alone ${median(transfer).toFixed(2)} ms), 1,025 chars ${median(long).toFixed(2)} ms`,
    );
    // Hashing would add a whole verification on top of the transfer.
    expect(median(huge) - median(transfer)).toBeLessThan(median(verify) / 2);
    expect(median(long)).toBeLessThan(median(verify) / 2);
  }, 60_000);
});
