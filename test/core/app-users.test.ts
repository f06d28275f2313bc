import {
  ConfigError,
  Latchkey,
  MemoryStore,
  StoreUnavailableError,
  type VerifyCredentials,
} from 'latchkey';
import { describe, expect, it } from 'vitest';

// Issue 12 item 12: an app that keeps its own users (`verifyCredentials`) tells latchkey through
// `isActive` when one is gone or disabled, so a remember-me token cannot bring them back.

interface AppUser {
  readonly id: string;
  readonly password: string;
  active: boolean;
}

function setup(options: { isActive?: boolean } = {}) {
  const table = new Map<string, AppUser>([
    ['ada', { id: 'app-1', password: 'correct horse battery', active: true }],
  ]);
  const byId = (id: string) => [...table.values()].find((user) => user.id === id);
  const verifyCredentials: VerifyCredentials = async (username, password) => {
    const user = table.get(username);
    return user?.active && user.password === password ? { userId: user.id } : null;
  };
  const store = new MemoryStore();
  const auth = new Latchkey({
    store,
    verifyCredentials,
    remember: { store },
    ...(options.isActive === false
      ? {}
      : { isActive: async (id: string) => byId(id)?.active === true }),
  });
  return { table, store, auth };
}

/** A browser that kept only its remember-me cookie from `setCookie` (the session is gone). */
function rememberOnly(setCookie: readonly string[]) {
  const line = setCookie.find((candidate) => candidate.startsWith('__Host-remember='));
  if (!line) throw new Error('no remember-me cookie');
  return { method: 'GET', url: '/', cookie: line.split(';')[0] as string, accept: 'text/html' };
}

async function rememberedLogin(auth: Latchkey, store: MemoryStore) {
  const login = await auth.login({
    username: 'ada',
    password: 'correct horse battery',
    remember: true,
  });
  if (!login.ok) throw new Error('login failed');
  await store.deleteByUser('app-1');
  return { ...rememberOnly(login.setCookie), secFetchMode: null };
}

describe('isActive (verifyCredentials apps)', () => {
  it('12: an active app user comes back from remember-me', async () => {
    const { auth, store } = setup();
    const restored = await auth.authenticate(await rememberedLogin(auth, store));
    expect(restored.ok && restored.session.userId).toBe('app-1');
  });

  it.each([
    ['disabled', (table: Map<string, AppUser>) => ((table.get('ada') as AppUser).active = false)],
    ['deleted', (table: Map<string, AppUser>) => table.delete('ada')],
  ])(
    '12: a %s app user is not restored from remember-me; the cookie is cleared',
    async (_kind, end) => {
      const { auth, store, table } = setup();
      const request = await rememberedLogin(auth, store);
      end(table);
      const refused = await auth.authenticate(request);
      expect(refused.ok).toBe(false);
      expect(refused.setCookie).toContainEqual(
        expect.stringMatching(/^__Host-remember=; Max-Age=0/),
      );
      expect(await store.listByUser('app-1', Date.now())).toEqual([]);
      // Coming back does not revive the token: it was forgotten, not only refused.
      table.set('ada', { id: 'app-1', password: 'correct horse battery', active: true });
      expect((await auth.authenticate(request)).ok).toBe(false);
    },
  );

  it('12: without isActive the same token still restores (the gap the hook closes)', async () => {
    const { auth, store, table } = setup({ isActive: false });
    const request = await rememberedLogin(auth, store);
    table.delete('ada');
    expect((await auth.authenticate(request)).ok).toBe(true);
  });

  it('12: a login whose app user is disabled while it is checked starts no session', async () => {
    const store = new MemoryStore();
    let active = true;
    const auth = new Latchkey({
      store,
      // The app disables the user right after its password check said yes, before the session.
      verifyCredentials: async () => {
        active = false;
        return { userId: 'app-1' };
      },
      isActive: async () => active,
      remember: { store },
    });
    const login = await auth.login({ username: 'ada', password: 'whatever', remember: true });
    expect(login).toEqual({ ok: false, error: 'invalid_credentials' });
    expect(await store.listByUser('app-1', Date.now())).toEqual([]);
    expect(await store.deleteRememberByUser('app-1')).toBe(0);
  });

  it('12: an isActive that throws fails closed (StoreUnavailableError, 503), never signed in', async () => {
    const store = new MemoryStore();
    let down = false;
    const auth = new Latchkey({
      store,
      verifyCredentials: async () => ({ userId: 'app-1' }),
      isActive: async () => {
        if (down) throw new Error('users database down');
        return true;
      },
      remember: { store },
    });
    const request = await rememberedLogin(auth, store);
    down = true;
    const refused = await auth.authenticate(request);
    expect(refused.ok === false && refused.reason).toBe('unavailable');
    await expect(auth.login({ username: 'ada', password: 'whatever' })).rejects.toThrow(
      StoreUnavailableError,
    );
    expect(await store.listByUser('app-1', Date.now())).toEqual([]);
  });

  it('12: isActive without verifyCredentials is a ConfigError', () => {
    const store = new MemoryStore();
    expect(() => new Latchkey({ store, isActive: async () => true })).toThrow(ConfigError);
    expect(() => new Latchkey({ store, users: store, isActive: async () => true })).toThrow(
      /isActive/,
    );
  });
});
