import { ConfigError } from 'latchkey';
import { createValidationCache, type RedisConnection, RedisStore } from 'latchkey/stores/redis';
import { describe, expect, it } from 'vitest';

/** Enough of a node-redis client for the constructor; it never sends a command. */
const client: RedisConnection = {
  hGetAll: async () => ({}),
  eval: async () => null,
  evalSha: async () => null,
  isReady: false,
  on: () => undefined,
  close: async () => undefined,
  destroy: () => undefined,
};

const URL = 'redis://127.0.0.1:6379';

/** Each option mistake, as a caller without TypeScript could make it. */
const MISTAKES: [string, () => unknown, RegExp][] = [
  ['a URL that does not parse', () => new RedisStore('not a url'), /^url:/],
  ['a URL of another protocol', () => new RedisStore('http://127.0.0.1:6379'), /^url:.*http/],
  ['a database that is not a number', () => new RedisStore(`${URL}/two`), /^url:/],
  ['no connection', () => new RedisStore(null as unknown as string), /^connection:/],
  ['a number as connection', () => new RedisStore(5 as unknown as string), /^connection:/],
  ['null options', () => new RedisStore(URL, null as unknown as undefined), /^options:/],
  [
    'a prefix that is not text',
    () => new RedisStore(URL, { prefix: 5 as unknown as string }),
    /^prefix:/,
  ],
  [
    'a cache that is text',
    () => new RedisStore(URL, { cache: 'yes' as unknown as boolean }),
    /^cache:/,
  ],
  [
    'a cache of no entries',
    () => new RedisStore(URL, { cache: { maxEntries: 0 } }),
    /^cache\.maxEntries:/,
  ],
  [
    'a fractional cache size',
    () => new RedisStore(URL, { cache: { maxEntries: 1.5 } }),
    /^cache\.maxEntries:/,
  ],
  [
    'a negative connectTimeout',
    () => new RedisStore(URL, { connectTimeout: -5 }),
    /^connectTimeout:/,
  ],
  [
    'a connectTimeout of NaN',
    () => new RedisStore(URL, { connectTimeout: Number.NaN }),
    /^connectTimeout:/,
  ],
  [
    'an endless connectTimeout',
    () => new RedisStore(URL, { connectTimeout: Infinity }),
    /^connectTimeout:/,
  ],
  [
    'a connectTimeout as text',
    () => new RedisStore(URL, { connectTimeout: '5' as unknown as number }),
    /^connectTimeout:/,
  ],
  [
    'a cache option beside a client of the app',
    () => new RedisStore(client, { cache: true }),
    /^cache:/,
  ],
  [
    'a validation cache of no entries',
    () => createValidationCache({ maxEntries: 0 }),
    /^cache\.maxEntries:/,
  ],
];

describe('RedisStore options', () => {
  for (const [label, build, message] of MISTAKES) {
    it(`${label} is a ConfigError naming the option`, () => {
      let thrown: unknown;
      try {
        build();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as Error).message).toMatch(message);
    });
  }

  it('RedisStore.connect rejects a bad option with the ConfigError, before connecting', async () => {
    await expect(RedisStore.connect(URL, { connectTimeout: 0 })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('a URL that is refused is never repeated in the message (it may hold a password)', () => {
    expect(() => new RedisStore('redis://:hunter2@127.0.0.1:6379/two')).toThrow(ConfigError);
    expect(() => new RedisStore('redis://:hunter2@127.0.0.1:6379/two')).not.toThrow(/hunter2/);
  });

  it('a client of the app with no options is taken as it is', async () => {
    const store = new RedisStore(client);
    expect(store.client).toBe(client);
    expect(store.cache).toBeNull();
    await store.close();
  });
});
