import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('the README quick start runs: login sets a cookie that the next request is served with', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /<!-- quick-start -->\s*```ts\n([\s\S]*?)```\s*<!-- \/quick-start -->/.exec(
    readme,
  )?.[1];
  expect(block).toBeDefined();
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-readme-'));
  // Run it as written, except: a free port, a database in a temp dir, and the server exported.
  const code = (block as string)
    .replace(
      "server.listen(3000, '127.0.0.1');",
      "server.listen(0, '127.0.0.1');\nexport { server };",
    )
    .replace("'sessions.db'", JSON.stringify(join(dir, 'sessions.db')));
  expect(code).toContain('listen(0');
  const file = new URL('./.quick-start.generated.ts', import.meta.url);
  writeFileSync(file, code);
  try {
    const { server } = (await import(file.href)) as { server: Server };
    await new Promise((resolve) => server.once('listening', resolve));
    const address = server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

    const anonymous = await fetch(`${base}/dashboard`, {
      redirect: 'manual',
      headers: { accept: 'text/html' },
    });
    expect(anonymous.status).toBe(303);
    const login = await fetch(`${base}/login`, { method: 'POST' });
    expect(login.status).toBe(204);
    const cookie = (login.headers.getSetCookie()[0] as string).split(';')[0] as string;
    const page = await fetch(`${base}/dashboard`, { headers: { cookie } });
    expect(await page.text()).toBe('Hello, Ada');
    await new Promise((resolve) => server.close(resolve));
  } finally {
    rmSync(file, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
