import { Writable } from 'node:stream';
import { Latchkey, MemoryStore } from 'latchkey';
import { auditLog } from 'latchkey/audit';
import { expect, it } from 'vitest';

it('writes one JSON line per event with public ids only, never the token', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).trim().split('\n'));
      done();
    },
  });
  const auth = new Latchkey({ store: new MemoryStore(), onEvent: auditLog(sink) });
  const { token, session } = await auth.create('user-1', { ip: '192.0.2.1', userAgent: 'UA' });
  await auth.logout(token);
  await new Promise((resolve) => setImmediate(resolve));
  const records = lines.map((line) => JSON.parse(line));
  expect(records.map((r) => r.event)).toEqual(['created', 'logout']);
  expect(records[0]).toMatchObject({
    level: 30,
    msg: 'created',
    sessionId: session.id,
    userId: 'user-1',
    ip: '192.0.2.1',
    userAgent: 'UA',
  });
  expect(typeof records[0].time).toBe('string');
  expect(lines.join('\n')).not.toContain(token);
});
