import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CsrfTokens, Latchkey, MemoryStore, type SessionEvent } from '../../src/index.js';
import { createApp } from '../../src/server/app.js';
import { ARTIFACTS, chromiumAvailable, launchChromium } from '../helpers/chromium.js';

const PASSWORD = 'a long browser passphrase';

const available = chromiumAvailable();

describe.skipIf(!available)('passkeys in Chromium with a virtual authenticator', () => {
  let server: Server;
  let browser: Browser;
  let base: string;
  const events: SessionEvent[] = [];
  /** What the browser's console said, CSP violations included: must stay empty. */
  const complaints: string[] = [];

  beforeAll(async () => {
    // The origin names the port, so the app is built once the server listens.
    let app: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | null = null;
    server = createServer((req, res) => void app?.(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // WebAuthn on plain http works on localhost only, so the browser goes there.
    base = `http://localhost:${(server.address() as AddressInfo).port}`;
    const store = new MemoryStore();
    const latchkey = new Latchkey({
      store,
      users: store,
      throttle: { store },
      secondFactor: {
        store,
        secretKey: 'a browser test key of at least thirty-two characters',
        passkeys: { rpId: 'localhost', origins: [base] },
      },
      onEvent: (event) => events.push(event),
    });
    app = createApp({
      latchkey,
      store,
      allowSignup: true,
      trustedProxies: new Set(),
      csrf: new CsrfTokens('a browser test secret of thirty-two bytes or more'),
      https: false,
      loopbackOnly: true,
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  async function shot(page: Page, step: string): Promise<void> {
    await page.screenshot({ path: `${ARTIFACTS}passkeys-${step}.png`, fullPage: true });
  }

  /** The session the last login started, from the engine's events. */
  function lastLogin(): Extract<SessionEvent, { type: 'login_succeeded' }> {
    const logins = events.filter((event) => event.type === 'login_succeeded');
    return logins[logins.length - 1] as Extract<SessionEvent, { type: 'login_succeeded' }>;
  }

  async function logOut(page: Page): Promise<void> {
    await Promise.all([
      page.waitForURL(/\/login$/),
      page.getByRole('button', { name: 'Log out' }).first().click(),
    ]);
  }

  it('registers a passkey, signs in with it alone and as a second factor, renames and removes it', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (message) => {
      // The browser asks for /favicon.ico on its own; the server has none.
      if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) {
        complaints.push(`${message.text()} (${message.location().url})`);
      }
    });
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
      },
    });

    // Sign up.
    await page.goto(`${base}/signup`);
    await page.getByLabel('Username').fill('ada');
    await page.getByLabel('Password').fill(PASSWORD);
    await Promise.all([
      page.waitForURL(/\/dashboard$/),
      page.getByRole('button', { name: 'Create account' }).click(),
    ]);
    await shot(page, '1-signed-up');

    // Register a passkey on the profile page: recovery codes come with the first factor.
    const profile = await page.goto(`${base}/profile/two-factor`);
    expect(profile?.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(await page.locator('script:not([src])').count()).toBe(0);
    await page.getByLabel('Name of the new passkey').fill('Test key');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect
      .poll(() => page.locator('[data-passkey-codes]').isVisible(), { timeout: 10_000 })
      .toBe(true);
    expect(await page.locator('[data-passkey-codes] li').count()).toBe(10);
    await shot(page, '2-registered');
    await page.getByRole('link', { name: 'Done' }).click();
    await expect.poll(() => page.getByText('Test key').first().isVisible()).toBe(true);

    // Rename it.
    await page.getByLabel('New name').fill('Laptop');
    await page.getByRole('button', { name: 'Rename' }).click();
    await expect.poll(() => page.getByText('Renamed.').isVisible()).toBe(true);
    await shot(page, '3-renamed');

    // Passwordless: the passkey alone, with user verification, is level 2.
    await logOut(page);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL(/\/dashboard$/);
    await shot(page, '4-passwordless');
    expect(lastLogin().via).toBe('passkey');
    expect(lastLogin().session.aal).toBe(2);
    expect(lastLogin().session.amr).toEqual(['hwk', 'mfa']);

    // Password, then the passkey as the second factor.
    await logOut(page);
    await page.getByLabel('Username').fill('ada');
    await page.getByLabel('Password').fill(PASSWORD);
    await Promise.all([
      page.waitForURL(/\/login\/second-factor/),
      page.getByRole('button', { name: 'Log in' }).click(),
    ]);
    await shot(page, '5-second-step');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL(/\/dashboard$/);
    await shot(page, '6-second-factor');
    expect(lastLogin().via).toBe('second_factor');
    expect(lastLogin().session.aal).toBe(2);
    expect(lastLogin().session.amr).toEqual(['pwd', 'hwk', 'mfa']);

    // Remove it: the session is at level 2 after a recent password, so no more is asked.
    await page.goto(`${base}/profile/two-factor`);
    await page.getByRole('button', { name: 'Remove Laptop' }).click();
    await expect.poll(() => page.getByText('Removed.').isVisible()).toBe(true);
    await expect.poll(() => page.getByText('No passkeys yet.').isVisible()).toBe(true);
    await shot(page, '7-removed');
    expect(complaints).toEqual([]);
    await context.close();
  });
});
