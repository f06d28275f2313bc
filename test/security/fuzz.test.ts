/**
 * The five fuzz classes of the checklist, as fast-check properties against one running server.
 * Bounded: the five together stay well under 60 s on two cores.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Browser,
  cli,
  csrfFrom,
  freshIp,
  inspect,
  isClearing,
  loggedIn,
  newAccount,
  parseSetCookie,
  type RawResponse,
  REMEMBER,
  rawGet,
  SESSION,
  type SecurityServer,
  startServer,
  strongPassword,
  uniqueName,
} from './support.js';

let server: SecurityServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.stop());

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The origin of a URL, or null when it does not parse (a port like `123.evil.example`). */
function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** Set-Cookie lines of a raw response. */
function rawSetCookies(res: RawResponse) {
  return res.head
    .split('\r\n')
    .filter((line) => /^set-cookie:/i.test(line))
    .map((line) => parseSetCookie(line.slice(line.indexOf(':') + 1).trim()));
}

/** The server is alive and well: its process runs and /healthz answers 200. */
async function expectAlive(): Promise<void> {
  expect(server.process.child.exitCode).toBeNull();
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
}

/** Fails if `value` (long enough to be distinctive) shows up anywhere in the raw response. */
function expectNotEchoed(res: RawResponse | { text: string }, value: string): void {
  if (value.length < 12) return;
  const bytes = Buffer.from(value, 'utf8').toString('latin1');
  expect(res.text.includes(bytes), 'the input is echoed back').toBe(false);
}

describe('fuzz', () => {
  it('fuzz 1: Cookie header junk never authenticates, never 500s, never echoes, never creates a session', async () => {
    const { browser } = await loggedIn(server);
    const valid = browser.session as string;
    const names = fc.constantFrom(
      SESSION,
      '__host-session',
      '__HOST-SESSION',
      ` ${SESSION}`,
      'session',
    );
    const junk = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: 43, maxLength: 43 }),
      fc.string({ unit: fc.constantFrom(...`${BASE64URL}+/=`), minLength: 1, maxLength: 200 }),
      fc.constantFrom('', '=', ';', '"quoted"', '\u0000', 'a\r\nSet-Cookie: x=1', 'ü'.repeat(50)),
      fc.constant('x'.repeat(8192)),
      fc.constant(`${valid.slice(0, 42)}\u0000`),
      fc.constant(valid.toLowerCase()),
      fc.constant(`${valid}=`),
    );
    const header = fc.oneof(
      fc.tuple(names, junk).map(([name, value]) => ({ value, cookie: `${name}=${value}` })),
      // Duplicates, including one valid cookie next to junk: never authenticated.
      junk.map((value) => ({ value, cookie: `${SESSION}=${valid}; ${SESSION}=${value}` })),
      junk.map((value) => ({ value, cookie: `${SESSION}=${value}; ${SESSION}=${valid}` })),
      fc.constant({ value: valid, cookie: `__host-session=${valid}` }),
      fc.constant({ value: '', cookie: '' }),
      fc.constant({ value: valid, cookie: `${SESSION}=${valid}; ${SESSION}=${valid}` }),
    );
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(header, fc.constantFrom('/api/me', '/dashboard'), async (input, path) => {
        runs++;
        const res = await rawGet(server, path, [Buffer.from(`Cookie: ${input.cookie}`, 'utf8')]);
        expect(res.status, res.head).toBeGreaterThanOrEqual(200);
        expect(res.status, res.head).toBeLessThan(500);
        expect([200, 201, 204]).not.toContain(res.status);
        const issued = rawSetCookies(res).filter((c) => c.name === SESSION && c.value !== '');
        expect(issued, 'no session created from a cookie').toEqual([]);
        if (input.value !== valid) expectNotEchoed(res, input.value);
      }),
      { numRuns: 250 },
    );
    console.info(`fuzz 1 (Cookie header): ${runs} cases`);
    await expectAlive();
    expect((await browser.me()).status, 'the real session is untouched').toBe(200);
  }, 60_000);

  it('fuzz 2: login bodies (types, NoSQL objects, NUL, 1 MB, NFC/NFD, spaces, case, content types) never log in', async () => {
    const account = { username: 'Zoë Fuzz', password: 'Fuzz-Pässwörd-Ω-2024-long' };
    const target = await newAccount(server);
    await server.browser().signup(account.username, account.password);
    const wrongVariants = (p: string) => [
      p.toUpperCase(),
      p.toLowerCase(),
      ` ${p}`,
      `${p} `,
      p.slice(0, -1),
      `${p}\u0000`,
      `${p}x`,
    ];
    const usernames = fc.oneof(
      fc.constantFrom(
        account.username,
        account.username.normalize('NFD'),
        account.username.toUpperCase(),
        ` ${account.username} `,
        target.username,
        target.username.toUpperCase(),
        '',
        ' ',
        '\u0000',
        'a'.repeat(300),
      ),
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
    );
    const passwords = fc.oneof(
      fc.constantFrom(
        ...wrongVariants(account.password),
        ...wrongVariants(target.password),
        '',
        '\u0000'.repeat(10),
        'p'.repeat(1025),
      ),
      fc.string({ maxLength: 60 }),
      fc.string({ unit: 'binary', minLength: 8, maxLength: 60 }),
    );
    const weird = fc.oneof(
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.constantFrom({ $ne: null }, { $gt: '' }, { $regex: '.*' }, [account.password], {}),
      fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
    );
    const field = (strings: fc.Arbitrary<unknown>) =>
      fc.oneof({ weight: 4, arbitrary: strings }, { weight: 1, arbitrary: weird });
    const bodies = fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .record(
            {
              username: field(usernames),
              password: field(passwords),
              remember: fc.oneof(fc.boolean(), fc.string(), fc.integer()),
            },
            { requiredKeys: [] },
          )
          .map((value) => ({ text: JSON.stringify(value), json: true })),
      },
      {
        weight: 1,
        arbitrary: fc
          .oneof(fc.string({ maxLength: 50 }), fc.constantFrom('null', '[]', '1', '"x"', '{', ''))
          .map((text) => ({ text, json: false })),
      },
    );
    const types = fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'Application/JSON',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      '',
    );
    const huge = JSON.stringify({ username: target.username, password: 'h'.repeat(1024 * 1024) });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(bodies, types, fc.integer({ min: 0, max: 49 }), async (body, type, dice) => {
        runs++;
        const text = dice === 0 ? huge : body.text;
        const headers: Record<string, string> = {
          origin: server.origin,
          'x-forwarded-for': freshIp(),
          accept: 'application/json',
        };
        if (type !== '') headers['content-type'] = type;
        const response = await fetch(`${server.url}/api/login`, {
          method: 'POST',
          headers,
          body: text,
          redirect: 'manual',
        });
        const answer = await response.text();
        const isJson = type.split(';')[0]?.trim().toLowerCase() === 'application/json';
        expect([400, 401, 413, 415, 429], `${type} ${text.slice(0, 80)}`).toContain(
          response.status,
        );
        if (!isJson) expect(response.status).toBe(415);
        if (dice === 0 && isJson) expect([400, 413]).toContain(response.status);
        if (response.status === 401) expect(answer).toBe('{"error":"invalid_credentials"}');
        if (response.status === 429) {
          expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        }
        const issued = response.headers
          .getSetCookie()
          .map(parseSetCookie)
          .filter((c) => c.name === SESSION && c.value !== '');
        expect(issued).toEqual([]);
        const sent = JSON.parse(body.json ? body.text : '{}') as { password?: unknown };
        if (typeof sent.password === 'string') expectNotEchoed({ text: answer }, sent.password);
      }),
      { numRuns: 200 },
    );
    console.info(`fuzz 2 (login body): ${runs} cases`);
    await expectAlive();
  }, 60_000);

  it('fuzz 3: CSRF matrix (method × Sec-Fetch-Site × Origin × Referer × token): only same-origin with the valid token passes', async () => {
    const { origin, port } = server;
    const owner = server.browser();
    const account = await newAccount(server);
    const preLogin = csrfFrom((await owner.page('/login')).body, '/login');
    const login = await owner.postForm('/login', {
      username: account.username,
      password: account.password,
      csrf: preLogin,
    });
    expect(login.status).toBe(303);
    const valid = await owner.csrf();
    const stranger = (await loggedIn(server)).browser;
    const others = await stranger.csrf();
    const tokens = {
      valid,
      missing: null,
      empty: '',
      other: others,
      preLogin,
      forged: 'A'.repeat(43),
    } as const;
    const origins = {
      absent: null,
      exact: origin,
      null: 'null',
      otherPort: `http://127.0.0.1:${port + 1}`,
      suffix: `http://127.0.0.1:${port}.evil.example`,
      https: `https://127.0.0.1:${port}`,
      localhost: `http://localhost:${port}`,
    } as const;
    const referers = {
      absent: null,
      same: `${origin}/sessions`,
      cross: 'http://evil.example/page',
      suffix: `http://127.0.0.1:${port}.evil.example/sessions`,
    } as const;
    const matrix = fc.record({
      method: fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE'),
      api: fc.boolean(),
      site: fc.constantFrom(null, 'same-origin', 'same-site', 'cross-site', 'none'),
      origin: fc.constantFrom(...(Object.keys(origins) as Array<keyof typeof origins>)),
      referer: fc.constantFrom(...(Object.keys(referers) as Array<keyof typeof referers>)),
      token: fc.constantFrom(...(Object.keys(tokens) as Array<keyof typeof tokens>)),
    });
    let runs = 0;
    let passed = 0;
    await fc.assert(
      fc.asyncProperty(matrix, async (c) => {
        runs++;
        const originValue = origins[c.origin];
        const refererValue = referers[c.referer];
        const sameOrigin =
          c.site !== null
            ? c.site === 'same-origin'
            : originValue !== null
              ? originValue === origin
              : refererValue !== null && originOf(refererValue) === origin;
        const headers: Record<string, string> = {};
        if (c.site !== null) headers['sec-fetch-site'] = c.site;
        if (refererValue !== null) headers.referer = refererValue;
        let res: Awaited<ReturnType<Browser['request']>>;
        if (c.api) {
          res = await owner.request(c.method, '/api/sessions/revoke-others', {
            json: {},
            origin: originValue,
            headers,
            keepJar: true,
          });
        } else {
          const token = tokens[c.token];
          res = await owner.request(c.method, '/sessions/revoke-others', {
            form: token === null ? {} : { csrf: token },
            origin: originValue,
            headers,
            keepJar: true,
          });
        }
        const shouldPass = c.method === 'POST' && sameOrigin && (c.api || c.token === 'valid');
        const label = JSON.stringify(c);
        expect(res.status, label).toBeLessThan(500);
        if (shouldPass) {
          passed++;
          expect(res.status, label).toBe(c.api ? 204 : 303);
        } else {
          expect(res.status, label).toBeGreaterThanOrEqual(400);
          if (!sameOrigin) expect(res.status, label).toBe(403);
          if (sameOrigin && c.method === 'POST') expect(res.status, label).toBe(403);
        }
        expect((await owner.me()).status, `${label}: session intact`).toBe(200);
      }),
      { numRuns: 300 },
    );
    console.info(`fuzz 3 (CSRF matrix): ${runs} cases, ${passed} expected to pass`);
    expect(passed).toBeGreaterThan(0);
    await expectAlive();
  }, 60_000);

  it('fuzz 4: tampered, swapped, truncated remember-me tokens are rejected and cleared, with no session', async () => {
    const { username, password } = await newAccount(server);
    const one = server.browser();
    await one.login(username, password, true);
    const two = server.browser();
    await two.login(username, password, true);
    const r1 = one.remember as string;
    const r2 = two.remember as string;
    const [s1, v1] = r1.split('.') as [string, string];
    const [s2, v2] = r2.split('.') as [string, string];
    const flipAt = (text: string, index: number, char: string) => {
      const i = index % text.length;
      const replacement = text[i] === char ? (char === 'A' ? 'B' : 'A') : char;
      return text.slice(0, i) + replacement + text.slice(i + 1);
    };
    const char = fc.constantFrom(...BASE64URL);
    const mutated = fc.oneof(
      fc.tuple(fc.nat(), char).map(([i, c]) => `${flipAt(s1, i, c)}.${v1}`),
      fc.tuple(fc.nat(), char).map(([i, c]) => `${s1}.${flipAt(v1, i, c)}`),
      fc.constantFrom(
        `${s1}.${v2}`,
        `${s2}.${v1}`,
        `${v1}.${s1}`,
        `${s1}${v1}`,
        `${s1}..${v1}`,
        `${s1}.${v1}.`,
        `.${s1}.${v1}`,
        `${s1}:${v1}`,
        `${s1}`,
        `.${v1}`,
        r1.toUpperCase(),
        `${s1}.${v1.replaceAll('-', '+').replaceAll('_', '/')}=`,
        `"${r1}"`,
        `${r1} x`,
      ),
      fc.nat({ max: r1.length - 1 }).map((n) => r1.slice(0, n)),
      fc.string({ unit: char, minLength: 1, maxLength: 8 }).map((tail) => `${r1}${tail}`),
      fc.string({ maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 80 }),
    );
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(mutated, async (value) => {
        fc.pre(value !== r1 && value !== r2);
        runs++;
        const res = await rawGet(server, '/api/me', [
          Buffer.from(`Cookie: ${REMEMBER}=${value}`, 'utf8'),
          `X-Forwarded-For: ${freshIp()}`,
        ]);
        expect(res.status, res.head).toBeGreaterThanOrEqual(400);
        expect(res.status, res.head).toBeLessThan(500);
        const cookies = rawSetCookies(res);
        expect(cookies.filter((c) => c.name === SESSION && c.value !== '')).toEqual([]);
        expect(cookies.filter((c) => c.name === REMEMBER && c.value !== '')).toEqual([]);
        if (res.status === 401) {
          const cleared = cookies.find((c) => c.name === REMEMBER);
          expect(cleared && isClearing(cleared), `${JSON.stringify(value)} cleared`).toBe(true);
        }
        expectNotEchoed(res, value);
      }),
      { numRuns: 200 },
    );
    console.info(`fuzz 4 (remember-me tokens): ${runs} cases`);

    // Replays after logout, password change and account deletion (replay after use: remember.test.ts).
    const replayed: Array<[string, () => Promise<unknown>, string]> = [];
    const a = await loggedIn(server, { remember: true });
    replayed.push([
      'logout',
      () => a.browser.request('POST', '/api/logout'),
      a.browser.remember as string,
    ]);
    const b = await loggedIn(server, { remember: true });
    const bDevice = server.browser();
    await bDevice.login(b.username, b.password, true);
    replayed.push([
      'password change',
      () => b.browser.postJson('/api/password', { newPassword: strongPassword() }),
      bDevice.remember as string,
    ]);
    const c = await loggedIn(server, { remember: true });
    replayed.push([
      'deleted user',
      () => cli(server, ['user', 'remove', c.username]),
      c.browser.remember as string,
    ]);
    for (const [label, act, token] of replayed) {
      await act();
      const res = await rawGet(server, '/api/me', [`Cookie: ${REMEMBER}=${token}`]);
      expect(res.status, label).toBe(401);
      const cookies = rawSetCookies(res);
      expect(
        cookies.filter((x) => x.name === SESSION && x.value !== ''),
        label,
      ).toEqual([]);
      const cleared = cookies.find((x) => x.name === REMEMBER);
      expect(cleared && isClearing(cleared), `${label}: cleared`).toBe(true);
    }
    await expectAlive();
  }, 60_000);

  it('fuzz 5: concurrency: bursts, rotating X-Forwarded-For, spraying, parallel refresh and logout', async () => {
    /** The store key of an account's attempt counter (as src/core/throttle.ts derives it). */
    const accountKey = (name: string) =>
      `account:${createHash('sha256').update(name.toLowerCase()).digest('base64url').slice(0, 32)}`;
    const counter = (key: string) =>
      (
        inspect(server, (db) =>
          db.prepare('SELECT count FROM latchkey_attempts WHERE key = ?').get(key),
        ) as { count: number } | undefined
      )?.count ?? 0;
    let runs = 0;
    // Bursts with rotating addresses: the account counter equals the attempts actually checked.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 10, max: 60 }), async (size) => {
        runs++;
        const { username } = await newAccount(server);
        const results = await Promise.all(
          Array.from({ length: size }, (_, i) =>
            server.browser(freshIp()).loginApi(username, `wrong-guess-${i}-x`),
          ),
        );
        const checked = results.filter((r) => r.status === 401).length;
        expect(checked + results.filter((r) => r.status === 429).length).toBe(size);
        expect(checked).toBeLessThanOrEqual(100);
        expect(checked).toBeLessThan(size);
        expect(counter(accountKey(username)), 'counter is atomic').toBe(checked);
      }),
      { numRuns: 5 },
    );
    // Password spraying from one address: the per-IP limit (100 free attempts) holds.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 115, max: 140 }), async (size) => {
        runs++;
        const sprayer = server.browser(freshIp());
        const results = await Promise.all(
          Array.from({ length: size }, () => sprayer.loginApi(uniqueName('spray'), 'Summer2024!!')),
        );
        expect(results.filter((r) => r.status === 429).length).toBeGreaterThan(0);
        expect(results.filter((r) => r.status === 401).length).toBeLessThanOrEqual(110);
        expect(results.every((r) => r.status === 401 || r.status === 429)).toBe(true);
      }),
      { numRuns: 2 },
    );
    // Parallel refreshes, remember-me restores and a logout-everywhere: nothing revives.
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 12 }),
        fc.integer({ min: 0, max: 12 }),
        async (reads, delayAt) => {
          runs++;
          const { browser, username, password } = await loggedIn(server, { remember: true });
          const device = server.browser();
          await device.login(username, password, true);
          const remember = device.remember as string;
          const seen = new Set<string>([browser.session as string, device.session as string]);
          const work: Array<Promise<unknown>> = [];
          for (let i = 0; i < reads; i++) {
            work.push(browser.me({ keepJar: true }));
            const restore = server.browser();
            restore.jar.set(REMEMBER, remember);
            work.push(
              restore.me().then((res) => {
                const issued = res.cookie(SESSION)?.value;
                if (issued) seen.add(issued);
                const rotated = res.cookie(REMEMBER)?.value;
                if (rotated) seen.add(`R:${rotated}`);
              }),
            );
            if (i === Math.min(delayAt, reads - 1)) {
              work.push(browser.request('POST', '/api/logout-everywhere', { keepJar: true }));
            }
          }
          await Promise.all(work);
          for (const value of seen) {
            const res = value.startsWith('R:')
              ? await server.browser().me({ cookie: `${REMEMBER}=${value.slice(2)}` })
              : await server.browser().me({ cookie: `${SESSION}=${value}` });
            expect(res.status, `revived: ${value.slice(0, 8)}`).toBe(401);
          }
          const live = inspect(server, (db) =>
            db
              .prepare(
                'SELECT count(*) AS n FROM latchkey_sessions s JOIN latchkey_users u ON u.id = s.user_id WHERE u.username = ?',
              )
              .get(username),
          ) as { n: number };
          expect(live.n).toBe(0);
        },
      ),
      { numRuns: 8 },
    );
    // Parallel refresh and a plain logout.
    for (let i = 0; i < 5; i++) {
      runs++;
      const { browser } = await loggedIn(server);
      const copy = browser.clone();
      await Promise.all([
        ...Array.from({ length: 6 }, () => copy.me({ keepJar: true })),
        browser.request('POST', '/api/logout'),
      ]);
      expect((await copy.me()).status).toBe(401);
    }
    console.info(`fuzz 5 (concurrency): ${runs} cases`);
    await expectAlive();
  }, 90_000);
});
