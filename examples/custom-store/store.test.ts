import { ConfigError, Latchkey } from 'latchkey';
import { describeSessionStore } from 'latchkey/testing';
import { describe, expect, it } from 'vitest';
import { MapStore } from './store.js';

// The same required-port contract every shipped store passes.
describeSessionStore('map store', { open: async () => new MapStore() });

describe('the engine on a store with only the required port', () => {
  it('refuses maxSessionsPerUser at construction, naming the "session index" capability', () => {
    const build = () => new Latchkey({ store: new MapStore(), maxSessionsPerUser: 3 });
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/maxSessionsPerUser.*"session index"/);
  });

  it('serves the seed flow: start a session, authenticate with its cookie, end it', async () => {
    const latchkey = new Latchkey({ store: new MapStore() });
    const { setCookie } = await latchkey.startSession('user-1', { user: { name: 'Ada' } });
    const cookie = (setCookie[0] as string).split(';')[0] as string;
    const request = { method: 'GET', url: '/', cookie, accept: null, secFetchMode: null };
    const auth = await latchkey.authenticate(request);
    expect(auth.ok && auth.user).toEqual({ name: 'Ada' });
    await latchkey.endSession(cookie);
    expect((await latchkey.authenticate(request)).ok).toBe(false);
  });
});
