import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Latchkey } from 'latchkey';
import { SqliteStore } from 'latchkey/stores/sqlite';
import { expect, it } from 'vitest';

it('a dump of the SQLite file and its WAL contains none of the issued tokens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-dump-'));
  const file = join(dir, 'sessions.db');
  const store = new SqliteStore(file);
  const auth = new Latchkey({ store, touchInterval: 0 });
  const tokens: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < 50; i++) {
    const { token, session } = await auth.create(`user-${i % 5}`, { user: { name: `u${i}` } });
    tokens.push(token);
    ids.push(session.id);
    await auth.validate(token);
  }
  const { session } = await auth.validate(tokens[0] as string);
  if (!session) throw new Error('expected a live session');
  const rotated = await auth.rotate(session);
  if (!rotated) throw new Error('expected a rotation');
  tokens.push(rotated.token);
  ids.push(rotated.session.id);

  const read = () =>
    [file, `${file}-wal`]
      .filter(existsSync)
      .map((path) => readFileSync(path).toString('latin1'))
      .join('');
  const live = read();
  await store.close();
  const closed = read();
  for (const dump of [live, closed]) {
    // The dump is real: it holds the session ids, only never the tokens.
    expect(dump).toContain(ids.at(-1));
    for (const token of tokens) {
      expect(dump.includes(token)).toBe(false);
      expect(dump.includes(Buffer.from(token, 'base64url').toString('hex'))).toBe(false);
    }
  }
  rmSync(dir, { recursive: true, force: true });
});
