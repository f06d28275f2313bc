import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, type ServeProcess, tempDir, useServe } from '../helpers/cli.js';
import {
  apiLogin,
  cookieOf,
  cookiesOf,
  jsonLines,
  PASSWORD,
  page,
  postForm,
  waitFor,
} from './support.js';

const temp = tempDir();
beforeAll(() => addUser(temp.db, 'ada', PASSWORD));
afterAll(() => temp.remove());

const startServe = useServe();

async function serve(args: readonly string[]): Promise<ServeProcess> {
  return startServe(['--db', temp.db, ...args]);
}

describe('the server log', () => {
  it('a full seed flow: one access line per request with its id, and no secret anywhere', async () => {
    // The audit log shares standard output (no --audit-log): everything lands in one stream.
    const server = await serve(['--trust-proxy', '127.0.0.1']);
    const { url } = server;
    const responses: Response[] = [];
    const track = async <T extends Response>(pending: Promise<T>): Promise<T> => {
      const response = await pending;
      responses.push(response);
      return response;
    };
    const secrets = new Set<string>([PASSWORD, 'not the password']);
    const keep = (response: Response) => {
      for (const pair of cookiesOf(response)) {
        const value = pair.slice(pair.indexOf('=') + 1);
        if (value) secrets.add(value);
      }
      return response;
    };

    // Log in with the form (a wrong password first), see the dashboard, log out, be refused.
    const shown = keep(await track(page(`${url}/login?next=%2Fdashboard`)));
    expect(shown.status).toBe(200);
    const wrong = await postForm(`${url}/login`, { username: 'ada', password: 'not the password' });
    const right = await postForm(`${url}/login`, { username: 'ada', password: PASSWORD });
    for (const attempt of [wrong, right]) {
      keep(attempt.response);
      responses.push(attempt.response);
      secrets.add(attempt.csrf);
      for (const pair of attempt.preLogin) secrets.add(pair.split('=')[1] as string);
    }
    expect(right.response.status).toBe(303);
    const cookie = cookieOf(right.response);
    const dashboard = await track(page(`${url}/dashboard`, cookie));
    expect(dashboard.status).toBe(200);
    const api = keep(await track(apiLogin(url, 'ada')));
    expect(
      (
        await track(
          fetch(`${url}/api/me?token=${api.headers.get('x-request-id')}`, {
            headers: { cookie: cookieOf(api) },
          }),
        )
      ).status,
    ).toBe(200);
    const logout = await postForm(`${url}/logout`, {}, { cookie });
    responses.push(logout.response);
    secrets.add(logout.csrf);
    expect(logout.response.status).toBe(303);
    expect((await track(page(`${url}/dashboard`, cookie))).status).toBe(303);
    // A proxy we trust names the request; its id is kept and echoed.
    const named = await track(
      fetch(`${url}/healthz`, { headers: { 'x-request-id': 'edge-42.a' } }),
    );
    expect(named.headers.get('x-request-id')).toBe('edge-42.a');

    const hash = new Database(temp.db, { readonly: true })
      .prepare('SELECT password_hash FROM latchkey_users WHERE username = ?')
      .pluck()
      .get('ada') as string;
    secrets.add(hash);

    // postForm's GETs of the form pages are requests too: count what the server answered.
    const ids = responses.map((response) => response.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(/^[\w.-]+$/);
    const access = await waitFor(() => {
      const lines = jsonLines(server.output()).filter((line) => line.msg === 'request');
      const seen = new Set(lines.map((line) => line.reqId));
      return ids.every((id) => seen.has(id)) ? lines : undefined;
    }, 'an access line for every request');
    // Form pages fetched by postForm: 3 posts, 3 pages shown, plus the tracked requests.
    expect(access).toHaveLength(ids.length + 3);
    expect(new Set(access.map((line) => line.reqId)).size).toBe(access.length);
    for (const line of access) {
      expect(Object.keys(line).sort()).toEqual(
        [
          'durationMs',
          'level',
          'method',
          'msg',
          'reqId',
          'route',
          'status',
          'time',
          'userId',
        ].sort(),
      );
      expect(String(line.route)).not.toContain('?');
    }
    const byId = new Map(access.map((line) => [line.reqId, line]));
    const loginLine = byId.get(right.response.headers.get('x-request-id'));
    expect(loginLine).toMatchObject({ method: 'POST', route: '/login', status: 303 });
    expect(loginLine?.userId).toMatch(/^[0-9a-f-]{36}$/);
    expect(byId.get(dashboard.headers.get('x-request-id'))).toMatchObject({
      route: '/dashboard',
      status: 200,
      userId: loginLine?.userId,
    });
    // The user a request acts as, whichever way it learnt it: a JSON login, a logout.
    expect(byId.get(api.headers.get('x-request-id'))).toMatchObject({
      route: '/api/login',
      status: 200,
      userId: loginLine?.userId,
    });
    expect(byId.get(logout.response.headers.get('x-request-id'))).toMatchObject({
      route: '/logout',
      status: 303,
      userId: loginLine?.userId,
    });
    expect(byId.get(wrong.response.headers.get('x-request-id'))).toMatchObject({
      status: 401,
      userId: null,
    });
    expect(byId.get('edge-42.a')).toMatchObject({ route: '/healthz', status: 200 });

    const output = server.output();
    expect(output).toContain('"event":"login_succeeded"');
    for (const secret of secrets) {
      expect(output.includes(secret), `server output contains ${secret.slice(0, 6)}…`).toBe(false);
    }
  });

  it('ignores X-Request-Id from a peer that is not a trusted proxy', async () => {
    const { url } = await serve([]);
    const response = await fetch(`${url}/healthz`, { headers: { 'x-request-id': 'spoofed' } });
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
