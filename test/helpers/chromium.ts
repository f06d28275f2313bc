/** Debian's Chromium for the browser tests, driven by playwright-core. */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/** Where the browser tests put their screenshots (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));

/** Whether Chromium is installed; absent, a browser test skips, or fails when services are required. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const reason = `browser tests need Debian's Chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') throw new Error(reason);
  console.warn(`skipping: ${reason}`);
  return false;
}

/** Headless Chromium with the flags this machine needs (no sandbox as root, no network chatter). */
export function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
    ],
  });
}
