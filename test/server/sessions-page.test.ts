import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeHtml } from '../../src/http/shared.js';
import { Latchkey, MemoryStore } from '../../src/index.js';
import { type AppServer, serveApp } from '../helpers/app-server.js';
import { FakeClock } from '../helpers/clock.js';

const PASSWORD = 'correct horse battery';
const CHROME_LINUX =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1';
const ODD = 'Mozilla/5.0 "quoted" <b>bold</b>';
const MINUTE = 60_000;

let server: AppServer;
let base: string;
let clock: FakeClock;
let auth: Latchkey;
let chrome: string;
let iphone: string;

function cookieOf(token: string): string {
  return `${auth.sessionCookie.name}=${token}`;
}

function get(path: string, cookie: string, userAgent: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    redirect: 'manual',
    headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', cookie, 'user-agent': userAgent },
  });
}

beforeAll(async () => {
  // Far from the real date: a page reading Date.now, not the clock, would show dates.
  clock = new FakeClock(Date.UTC(2030, 5, 1, 12, 0));
  const store = new MemoryStore();
  auth = new Latchkey({
    store,
    users: store,
    clock: clock.now,
    idleTimeout: '1d',
    absoluteTimeout: '2d',
    touchInterval: '1m',
  });
  const ada = await auth.createUser('ada', PASSWORD);
  server = await serveApp(() => ({ latchkey: auth, store, clock: clock.now }));
  base = server.base;

  // 12:00: a password login from Chrome on Linux, over HTTP.
  const login = await fetch(`${base}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base, 'user-agent': CHROME_LINUX },
    body: JSON.stringify({ username: 'ada', password: PASSWORD }),
  });
  expect(login.status).toBe(200);
  chrome = (login.headers.getSetCookie()[0] as string).split(';')[0] as string;
  // 12:30: a two-factor session on an iPhone, and one from an agent no parser knows.
  clock.advance(30 * MINUTE);
  const user = { username: 'ada' };
  const phone = await auth.create(ada.id, {
    user,
    userAgent: SAFARI_IPHONE,
    ip: '192.0.2.7',
    aal: 2,
    amr: ['pwd', 'otp'],
  });
  iphone = cookieOf(phone.token);
  await auth.create(ada.id, { user, userAgent: ODD });
  // 13:55: the iPhone is used; 14:00: Chrome opens the sessions page.
  clock.advance(85 * MINUTE);
  expect((await get('/dashboard', iphone, SAFARI_IPHONE)).status).toBe(200);
  clock.advance(5 * MINUTE);
});
afterAll(() => server.close());

/** The page's table row that names `device`. */
function rowOf(page: string, device: string): string {
  const row = page.split('<tr').find((part) => part.includes(`>${device}</span>`));
  if (!row) throw new Error(`no row for ${device}`);
  return row;
}

describe('the sessions page', () => {
  it('names each device, with the agent it sent as a title', async () => {
    const response = await get('/sessions', chrome, CHROME_LINUX);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(rowOf(page, 'Chrome 156 on Linux')).toContain(`title="${escapeHtml(CHROME_LINUX)}"`);
    expect(rowOf(page, 'Safari on iPhone')).toContain(`title="${escapeHtml(SAFARI_IPHONE)}"`);
    const odd = rowOf(page, 'Unknown device');
    expect(odd).toContain('title="Mozilla/5.0 &#34;quoted&#34; &#60;b&#62;bold&#60;/b&#62;"');
    expect(page).not.toContain('<b>bold');
  });

  it('says when each signed in and was last active, relative to the injected clock', async () => {
    const page = await (await get('/sessions', chrome, CHROME_LINUX)).text();
    const mine = rowOf(page, 'Chrome 156 on Linux');
    expect(mine).toContain(
      'Signed in <time datetime="2030-06-01T12:00:00.000Z" title="2030-06-01 12:00:00 UTC">2 hours ago</time>',
    );
    expect(mine).toContain('Last active <time datetime="2030-06-01T14:00:00.000Z"');
    expect(mine).toContain('>just now</time>');
    const phone = rowOf(page, 'Safari on iPhone');
    expect(phone).toContain('Signed in <time datetime="2030-06-01T12:30:00.000Z"');
    expect(phone).toContain('>1 hour ago</time>');
    expect(phone).toContain(
      'Last active <time datetime="2030-06-01T13:55:00.000Z" title="2030-06-01 13:55:00 UTC">5 minutes ago</time>',
    );
    expect(phone).toContain('192.0.2.7');
  });

  it('shows the assurance level and marks the current session', async () => {
    const page = await (await get('/sessions', chrome, CHROME_LINUX)).text();
    const mine = rowOf(page, 'Chrome 156 on Linux');
    expect(mine).toMatch(/^ class="current">/);
    expect(mine).toContain('This device');
    expect(mine).toContain('<td>Single factor<br><span class="hint">password</span></td>');
    const phone = rowOf(page, 'Safari on iPhone');
    expect(phone).not.toContain('This device');
    expect(phone).toContain(
      '<td>Two-factor<br><span class="hint">password, one-time code</span></td>',
    );
    expect(phone).toContain('aria-label="Revoke session from Safari on iPhone"');
    // A session whose app named no methods shows its level only.
    expect(rowOf(page, 'Unknown device')).toContain('<td>Single factor</td>');
  });
});

describe('GET /api/sessions', () => {
  it('gives each session its device name, level and methods, next to the raw fields', async () => {
    const response = await fetch(`${base}/api/sessions`, {
      headers: { accept: 'application/json', cookie: iphone, 'user-agent': SAFARI_IPHONE },
    });
    const { sessions } = (await response.json()) as { sessions: Record<string, unknown>[] };
    const byDevice = new Map(sessions.map((session) => [session.device, session]));
    expect(byDevice.get('Chrome 156 on Linux')).toMatchObject({
      userAgent: CHROME_LINUX,
      createdAt: '2030-06-01T12:00:00.000Z',
      aal: 1,
      amr: ['pwd'],
      current: false,
    });
    expect(byDevice.get('Safari on iPhone')).toMatchObject({
      userAgent: SAFARI_IPHONE,
      ip: '192.0.2.7',
      createdAt: '2030-06-01T12:30:00.000Z',
      aal: 2,
      amr: ['pwd', 'otp'],
      current: true,
    });
    expect(byDevice.get('Unknown device')).toMatchObject({ userAgent: ODD, aal: 1, amr: [] });
  });
});
