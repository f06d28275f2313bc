import { createHash } from 'node:crypto';
import { ConfigError, type Duration, HostCookie, MemoryStore } from 'latchkey';
import { describe, expect, it } from 'vitest';
import { RememberTokens, rememberTokensOf } from '../../src/core/remember.js';
import { FakeClock } from '../helpers/clock.js';

const DAY = 86_400_000;
function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const tokens = new RememberTokens(store, new HostCookie('__Host-remember'), {
    lifetimeMs: 30 * DAY,
    graceMs: 10_000,
    now: clock.now,
  });
  return { clock, store, tokens };
}
const cookieValueOf = (setCookie: string) =>
  (setCookie.split(';')[0] as string).slice('__Host-remember='.length);

describe('remember-me tokens', () => {
  it('issues selector.validator in a 30-day __Host- cookie and stores only SHA-256(validator)', async () => {
    const { tokens, store } = setup();
    const setCookie = (await tokens.issue('user-1')).setCookie;
    expect(setCookie).toMatch(
      /^__Host-remember=[\w-]{22}\.[\w-]{43}; Max-Age=2592000; Path=\/; HttpOnly; Secure; SameSite=Strict$/,
    );
    const [selector, validator] = cookieValueOf(setCookie).split('.') as [string, string];
    const record = await store.findRemember(selector);
    expect(record?.validatorHash).toBe(createHash('sha256').update(validator).digest('base64url'));
    expect(JSON.stringify(record)).not.toContain(validator);
  });

  it('each use rotates; the old token works only within the grace window, giving the same successor', async () => {
    const { tokens, clock } = setup();
    const first = cookieValueOf((await tokens.issue('user-1')).setCookie);
    const used = await tokens.use(first);
    if (used.status !== 'valid') throw new Error('expected valid');
    const parallel = await tokens.use(first);
    expect(parallel.status === 'valid' && parallel.setCookie).toBe(used.setCookie);
    clock.advance(10_001);
    expect(await tokens.use(first)).toEqual({ status: 'theft', userId: 'user-1' });
    const second = await tokens.use(cookieValueOf(used.setCookie));
    expect(second.status).toBe('valid');
  });

  it('rotation never extends the chain: past 30 days the token is refused', async () => {
    const { tokens, clock } = setup();
    let value = cookieValueOf((await tokens.issue('user-1')).setCookie);
    for (let day = 0; day < 29; day++) {
      clock.advance(DAY);
      const used = await tokens.use(value);
      if (used.status !== 'valid') throw new Error(`refused on day ${day}`);
      value = cookieValueOf(used.setCookie);
      expect(used.record.createdAt).toBe(Date.UTC(2026, 0, 1));
    }
    clock.advance(DAY);
    expect(await tokens.use(value)).toEqual({ status: 'invalid' });
  });

  it.each([
    ['no separator', (v: string) => v.replace('.', '')],
    ['tampered validator', (v: string) => `${v.slice(0, -1)}${v.endsWith('A') ? 'B' : 'A'}`],
    ['tampered selector', (v: string) => `${v[0] === 'A' ? 'B' : 'A'}${v.slice(1)}`],
    ['swapped parts', (v: string) => v.split('.').reverse().join('.')],
    ['empty', () => ''],
  ])('%s is refused', async (_name, mangle) => {
    const { tokens } = setup();
    const value = cookieValueOf((await tokens.issue('user-1')).setCookie);
    expect(await tokens.use(mangle(value))).toEqual({ status: 'invalid' });
    expect((await tokens.use(value)).status).toBe('valid');
  });

  it('a forgotten token is refused, and so is its predecessor within the grace window', async () => {
    const { tokens } = setup();
    const first = cookieValueOf((await tokens.issue('user-1')).setCookie);
    const used = await tokens.use(first);
    if (used.status !== 'valid') throw new Error('expected valid');
    await tokens.forget(cookieValueOf(used.setCookie));
    expect(await tokens.use(cookieValueOf(used.setCookie))).toEqual({ status: 'invalid' });
    expect(await tokens.use(first)).toEqual({ status: 'invalid' });
    await tokens.forget(null);
  });

  it('graceWindow sets how long a rotated token still yields its successor', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const tokens = rememberTokensOf({ store, graceWindow: '1s' }, clock.now) as RememberTokens;
    const first = cookieValueOf((await tokens.issue('user-1')).setCookie);
    const used = await tokens.use(first);
    if (used.status !== 'valid') throw new Error('expected valid');
    clock.advance(1000);
    expect((await tokens.use(first)).status).toBe('valid');
    clock.advance(1);
    expect(await tokens.use(first)).toEqual({
      status: 'theft',
      userId: 'user-1',
    });
  });

  it('graceWindow defaults to 10 s and refuses more than 1 minute', async () => {
    const clock = new FakeClock();
    const tokens = rememberTokensOf({ store: new MemoryStore() }, clock.now) as RememberTokens;
    const first = cookieValueOf((await tokens.issue('user-1')).setCookie);
    expect((await tokens.use(first)).status).toBe('valid');
    clock.advance(10_000);
    expect((await tokens.use(first)).status).toBe('valid');
    clock.advance(1);
    expect((await tokens.use(first)).status).toBe('theft');
    for (const graceWindow of ['61s', 'soon'] as Duration[]) {
      expect(() => rememberTokensOf({ store: new MemoryStore(), graceWindow }, clock.now)).toThrow(
        ConfigError,
      );
    }
    expect(() =>
      rememberTokensOf({ store: new MemoryStore(), graceWindow: '2m' }, clock.now),
    ).toThrow('remember.graceWindow: at most 1m');
  });
});
