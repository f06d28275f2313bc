import {
  CredentialError,
  Latchkey,
  MemoryStore,
  normalizeUsername,
  usernameKey,
  usernameProblem,
} from 'latchkey';
import { describe, expect, it } from 'vitest';

const PASSWORD = 'correct horse battery';

/** Whether `name` may name a new account. */
function allowed(name: string): boolean {
  const normalized = normalizeUsername(name);
  return normalized !== null && usernameProblem(normalized) === null;
}

describe('usernames follow RFC 8265 (PRECIS UsernameCaseMapped)', () => {
  it('refuse format characters, controls and lone surrogates, at sign-up and at lookup', () => {
    for (const bad of [
      'admin\u200b',
      'ad\u200emin',
      'admin\u200f',
      '\ufeffadmin',
      'ad\u00admin',
      'ad\u0085min',
      'ad\u009bmin',
      'admin\ud800',
      '\udc00admin',
      'ad\u2028min',
    ]) {
      expect(normalizeUsername(bad), JSON.stringify(bad)).toBeNull();
    }
  });

  it('map fullwidth and halfwidth forms to their plain forms, and compare them as one', () => {
    expect(normalizeUsername('ＡＤＭＩＮ')).toBe('ADMIN');
    expect(usernameKey('ａｄｍｉｎ')).toBe('admin');
    expect(normalizeUsername('ｶﾀｶﾅ')).toBe('カタカナ');
    expect(usernameKey('ＳＴＲＡẞＥ')).toBe(usernameKey('strasse'));
  });

  it('keep letters, digits, marks and ASCII symbols of any script, in single-space-separated words', () => {
    for (const good of [
      'ada',
      'Jane Doe',
      'café',
      'Straße',
      'user@example.com',
      'dev_ops-1',
      'Ελένη',
      '中文名',
      'שלום',
      'مرحبا1',
      'Zoe\u0308',
    ]) {
      expect(allowed(good), good).toBe(true);
    }
  });

  it('refuse what the IdentifierClass disallows: compatibility forms, symbols, odd spaces, mixed directions', () => {
    for (const bad of [
      'ﬁx',
      'x²',
      '☕dev',
      'a\u00a0b',
      'Jane  Doe',
      'שלוםabc',
      'a\u0640b',
      '\u0661\u06f1',
    ]) {
      expect(allowed(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it('createUser refuses admin\\u200b and a fullwidth twin of a taken name', async () => {
    const store = new MemoryStore();
    const auth = new Latchkey({ store, users: store });
    await auth.createUser('admin', PASSWORD);
    await expect(auth.createUser('admin\u200b', PASSWORD)).rejects.toMatchObject({
      code: 'invalid_username',
    });
    await expect(auth.createUser('admin\ud800', PASSWORD)).rejects.toBeInstanceOf(CredentialError);
    await expect(auth.createUser('ＡＤＭＩＮ', PASSWORD)).rejects.toMatchObject({
      code: 'username_taken',
    });
    expect((await auth.login({ username: 'ａｄｍｉｎ', password: PASSWORD })).ok).toBe(true);
  });

  it('an account stored before width mapping is still found by the name it signed up with', async () => {
    const store = new MemoryStore();
    const auth = new Latchkey({ store, users: store });
    // What latchkey 0.1 stored for "ｂｏｂ": the name as typed, its key without width mapping.
    const legacy = await auth.createUser('bob-legacy', PASSWORD);
    const record = await store.findUserById(legacy.id);
    await store.deleteUser(legacy.id);
    await store.createUser({
      ...(record as NonNullable<typeof record>),
      username: 'ｂｏｂ',
      usernameKey: 'ｂｏｂ',
    });
    expect((await auth.login({ username: 'ｂｏｂ', password: PASSWORD })).ok).toBe(true);
    expect((await auth.findUser('ｂｏｂ'))?.id).toBe(legacy.id);
  });
});
