import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, chromiumAvailable, launchChromium } from '../helpers/chromium.js';
import { type ServeProcess, startServe, tempDir } from '../helpers/cli.js';

const PASSWORD = 'a long browser passphrase';

const available = chromiumAvailable();

describe.skipIf(!available)('the reference server in Chromium', () => {
  const temp = tempDir();
  let server: ServeProcess;
  let browser: Browser;
  let otherSite: Server;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    server = await startServe(['--allow-signup', '--db', temp.db]);
    browser = await launchChromium();
    // Another site (localhost is a different site from 127.0.0.1) that links to the server.
    otherSite = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><a id="go" href="${server.url}/sessions">my sessions</a>`);
    });
    await new Promise<void>((resolve) => otherSite.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await Promise.all(contexts.map((context) => context.close()));
    await browser?.close();
    await new Promise((resolve) => otherSite?.close(resolve));
    await server?.stop();
    temp.remove();
  });

  async function newPage(options: { javaScriptEnabled?: boolean } = {}): Promise<Page> {
    const context = await browser.newContext(options);
    contexts.push(context);
    return context.newPage();
  }

  async function submitLogin(page: Page, username: string): Promise<void> {
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await Promise.all([
      page.waitForURL(/\/dashboard$/),
      page.getByRole('button', { name: 'Log in' }).click(),
    ]);
  }

  it('sign-up, form login, cookie flags, sessions from two contexts, revoke, cross-site link, logout', async () => {
    // Context A signs up.
    const a = await newPage();
    await a.goto(`${server.url}/signup`);
    await a.getByLabel('Username').fill('Björk');
    await a.getByLabel('Password').fill(PASSWORD);
    await Promise.all([
      a.waitForURL(/\/dashboard$/),
      a.getByRole('button', { name: 'Create account' }).click(),
    ]);
    expect(await a.locator('main').textContent()).toContain('Signed in as Björk');

    const cookies = await a.context().cookies();
    const cookie = cookies.find((c) => c.name === '__Host-session');
    expect(cookie).toMatchObject({
      name: '__Host-session',
      path: '/',
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
      expires: -1,
    });
    expect(cookie?.domain).toBe('127.0.0.1');
    // The device cookie (issue 12.3) is as locked down, and outlives the browser session.
    expect(cookies.find((c) => c.name === '__Host-device')).toMatchObject({
      path: '/',
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
    });
    expect(cookies.map((c) => c.name).sort()).toEqual(['__Host-device', '__Host-session']);
    expect(await a.evaluate('document.cookie')).toBe('');

    // Context B logs in through the form with JavaScript off; a wrong password first.
    const b = await newPage({ javaScriptEnabled: false });
    await b.goto(`${server.url}/dashboard`);
    expect(new URL(b.url()).pathname + new URL(b.url()).search).toBe('/login?next=%2Fdashboard');
    await b.getByLabel('Username').fill('björk');
    await b.getByLabel('Password').fill('not the password');
    await b.getByRole('button', { name: 'Log in' }).click();
    await b.waitForLoadState();
    expect((await b.getByRole('alert').textContent())?.trim()).toBe(
      'Incorrect username or password.',
    );
    expect(await b.getByLabel('Username').inputValue()).toBe('björk');
    expect(await b.getByLabel('Password').inputValue()).toBe('');
    await b.screenshot({ path: `${ARTIFACTS}login.png`, fullPage: true });
    await submitLogin(b, 'björk');
    expect(await b.locator('main').textContent()).toContain('Signed in as Björk');
    await b.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });

    // A sees both sessions, its own marked, and revokes B's.
    await a.goto(`${server.url}/sessions`);
    const rows = a.locator('tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await a.locator('tr.current').textContent()).toContain('This device');
    await a.screenshot({ path: `${ARTIFACTS}sessions.png`, fullPage: true });
    await Promise.all([
      a.waitForURL(/\/sessions$/),
      a
        .locator('tbody tr:not(.current)')
        .getByRole('button', { name: /Revoke/ })
        .click(),
    ]);
    expect(await a.locator('tbody tr').count()).toBe(1);

    // B is logged out at its next navigation.
    await b.goto(`${server.url}/profile`);
    expect(new URL(b.url()).pathname).toBe('/login');
    // The session cookie is gone: only the login form's fresh CSRF binding and the device cookie
    // (which says this browser logged in before, issue 12.3) remain.
    const namesOf = async (page: typeof a) =>
      (await page.context().cookies()).map((c) => c.name).sort();
    expect(await namesOf(b)).toEqual(['__Host-csrf', '__Host-device']);

    // A link from another site arrives without the Strict cookie; the re-navigation page fixes it.
    await a.goto(`http://localhost:${(otherSite.address() as AddressInfo).port}/`);
    await Promise.all([a.waitForURL(/\/sessions\?renav=1$/), a.click('#go')]);
    expect((await a.locator('h1').textContent())?.trim()).toBe('Your sessions');

    // Logging out lands on the login page and forgets the cookie.
    await Promise.all([
      a.waitForURL(/\/login$/),
      a.getByRole('button', { name: 'Log out' }).first().click(),
    ]);
    expect((await a.locator('h1').textContent())?.trim()).toBe('Log in');
    // A real browser keeps the device cookie through Clear-Site-Data: "cache", "storage".
    expect(await namesOf(a)).toEqual(['__Host-csrf', '__Host-device']);
    await a.goto(`${server.url}/dashboard`);
    expect(new URL(a.url()).pathname).toBe('/login');
  });
});
