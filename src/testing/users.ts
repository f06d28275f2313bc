import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { UserStore } from '../core/capabilities.js';
import type { UserRecord } from '../core/store.js';
import { type StoreHarness, useStore } from './harness.js';

let clock = Date.UTC(2026, 0, 1);
export function user(overrides: Partial<UserRecord> = {}): UserRecord {
  const username = overrides.username ?? `user-${randomBytes(4).toString('hex')}`;
  return {
    id: randomBytes(16).toString('base64url'),
    username,
    usernameKey: username.toLowerCase(),
    passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo',
    createdAt: clock++,
    disabled: false,
    ...overrides,
  };
}

export function describeUserStore(
  name: string,
  harness: StoreHarness<UserStore & { close(): Promise<void> }>,
): void {
  describe(`UserStore contract: ${name}`, () => {
    const current = useStore(name, harness);
    let store: UserStore;
    beforeEach(() => {
      store = current();
    });

    it('creates a user found by id and by key', async () => {
      const ada = user({ username: 'Ada' });
      expect(await store.createUser(ada)).toBe(true);
      expect(await store.findUserById(ada.id)).toEqual(ada);
      expect(await store.findUserByKey('ada')).toEqual(ada);
      expect(await store.findUserByKey('Ada')).toBeNull();
      expect(await store.findUserById('nobody')).toBeNull();
    });

    it('a taken username key is refused and nothing is written', async () => {
      const first = user({ username: 'Grace', usernameKey: 'grace' });
      const second = user({ username: 'GRACE', usernameKey: 'grace' });
      expect(await store.createUser(first)).toBe(true);
      expect(await store.createUser(second)).toBe(false);
      expect(await store.findUserById(second.id)).toBeNull();
      expect(await store.findUserByKey('grace')).toEqual(first);
    });

    it('parallel sign-ups for one username create exactly one user', async () => {
      const attempts = Array.from({ length: 20 }, () => user({ usernameKey: 'race' }));
      const results = await Promise.all(attempts.map((u) => store.createUser(u)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('unicode usernames round-trip exactly', async () => {
      const zoe = user({ username: 'Zoë 日本 🦊', usernameKey: 'zoë 日本 🦊' });
      await store.createUser(zoe);
      expect(await store.findUserByKey('zoë 日本 🦊')).toEqual(zoe);
      expect(await store.findUserByKey('zoë 日本 🦊'.normalize('NFD'))).toBeNull();
    });

    it('updates the hash and the disabled flag independently', async () => {
      const ada = user();
      await store.createUser(ada);
      expect(await store.updateUser(ada.id, { disabled: true })).toBe(true);
      expect(await store.findUserById(ada.id)).toEqual({ ...ada, disabled: true });
      expect(await store.updateUser(ada.id, { passwordHash: 'new-hash' })).toBe(true);
      expect(await store.findUserById(ada.id)).toEqual({
        ...ada,
        disabled: true,
        passwordHash: 'new-hash',
      });
      expect(await store.updateUser('nobody', { disabled: true })).toBe(false);
    });

    it('lists users oldest first and deletes them', async () => {
      const a = user();
      const b = user();
      await store.createUser(b);
      await store.createUser(a);
      expect((await store.listUsers()).map((u) => u.id)).toEqual([a.id, b.id]);
      expect(await store.deleteUser(a.id)).toBe(true);
      expect(await store.deleteUser(a.id)).toBe(false);
      expect(await store.findUserByKey(a.usernameKey)).toBeNull();
      expect(await store.createUser(user({ usernameKey: a.usernameKey }))).toBe(true);
    });
  });
}
