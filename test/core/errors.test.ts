import { readdirSync, readFileSync } from 'node:fs';
import * as latchkey from 'latchkey';
import {
  ConfigError,
  CredentialError,
  CsrfTokens,
  DataTooLargeError,
  HostCookie,
  InvalidInputError,
  Latchkey,
  LatchkeyError,
  MemoryStore,
  parseDuration,
  SessionLimitError,
  StoreUnavailableError,
} from 'latchkey';
import { describe, expect, it } from 'vitest';

const CORE = new URL('../../src/core/', import.meta.url);

describe('everything the core throws on purpose is a LatchkeyError', () => {
  it('every `throw new` in src/core names an exported LatchkeyError subclass', () => {
    const exported = latchkey as unknown as Record<string, unknown>;
    const thrown = new Set<string>();
    for (const file of readdirSync(CORE).filter((name) => name.endsWith('.ts'))) {
      const source = readFileSync(new URL(file, CORE), 'utf8');
      for (const match of source.matchAll(/throw new (\w+)\(/g)) thrown.add(match[1] as string);
    }
    expect(thrown.size).toBeGreaterThan(3);
    for (const name of thrown) {
      const value = exported[name];
      expect(typeof value, name).toBe('function');
      expect((value as { prototype: unknown }).prototype, name).toBeInstanceOf(LatchkeyError);
    }
  });

  it('bad arguments are InvalidInputError, an oversize merge DataTooLargeError', async () => {
    const auth = new Latchkey({ store: new MemoryStore() });
    const { session } = await auth.create('user-1', { data: { a: 'x'.repeat(5000) } });
    const refusals: [Promise<unknown>, new (...args: never[]) => LatchkeyError][] = [
      [auth.create(''), InvalidInputError],
      [auth.create(42 as never), InvalidInputError],
      [auth.create('u', { user: [] as never }), InvalidInputError],
      [auth.create('u', { data: { big: 'x'.repeat(9000) } }), InvalidInputError],
      [auth.rotate(session, { user: 'x' as never }), InvalidInputError],
      [auth.setData('', { a: 1 }), InvalidInputError],
      [auth.setData(session.id, [] as never), InvalidInputError],
      [auth.setData(session.id, { n: Number.NaN }), InvalidInputError],
      [auth.setData(session.id, { b: 'y'.repeat(4000) }), DataTooLargeError],
    ];
    for (const [call, kind] of refusals) {
      await expect(call).rejects.toBeInstanceOf(kind);
      await expect(call).rejects.toBeInstanceOf(LatchkeyError);
    }
    expect(new DataTooLargeError(8192)).toBeInstanceOf(InvalidInputError);
    expect(new InvalidInputError('x').name).toBe('InvalidInputError');
  });

  it('bad options are ConfigError', () => {
    for (const build of [
      () => parseDuration('soon', 'idleTimeout'),
      () => parseDuration({}, 'idleTimeout'),
      () => parseDuration(-1, 'idleTimeout'),
      () => new HostCookie('bad name;'),
      () => new CsrfTokens('too short'),
      () => new Latchkey({ store: new MemoryStore(), reauthWindow: 'later' as never }),
      () => new Latchkey({ store: {} as never }),
    ]) {
      expect(build).toThrow(ConfigError);
    }
  });

  it('account methods without accounts are ConfigError; bad accounts input CredentialError', async () => {
    const store = new MemoryStore();
    const none = new Latchkey({ store });
    const calls: Promise<unknown>[] = [
      none.createUser('ada', 'correct horse battery'),
      none.findUser('ada'),
      none.listUsers(),
      none.changePassword('u', 'correct horse battery'),
      none.disableUser('u'),
      none.enableUser('u'),
      none.deleteUser('u'),
      none.signup({ username: 'ada', password: 'correct horse battery' }),
      none.login({ username: 'ada', password: 'correct horse battery' }),
    ];
    for (const call of calls) await expect(call).rejects.toBeInstanceOf(ConfigError);
    const accounts = new Latchkey({ store, users: store });
    await expect(accounts.createUser('', 'correct horse battery')).rejects.toBeInstanceOf(
      CredentialError,
    );
    expect(new CredentialError('weak_password', 'x')).toBeInstanceOf(LatchkeyError);
  });

  it('a store outage and the cap under reject are LatchkeyErrors too', async () => {
    const down = new MemoryStore();
    down.get = () => Promise.reject(new Error('ECONNRESET'));
    const auth = new Latchkey({ store: down, maxSessionsPerUser: 1, onSessionLimit: 'reject' });
    await expect(auth.validate('a'.repeat(43))).rejects.toBeInstanceOf(StoreUnavailableError);
    await auth.create('u');
    const refused = auth.create('u');
    await expect(refused).rejects.toBeInstanceOf(SessionLimitError);
    await expect(refused).rejects.toBeInstanceOf(LatchkeyError);
  });
});
