/** Helpers for the operations tests: forms with CSRF tokens, cookies, log lines, metrics. */

export const PASSWORD = 'correct horse battery';
export const NAVIGATE = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

/** The `name=value` part of each Set-Cookie. */
export function cookiesOf(response: Response): string[] {
  return response.headers.getSetCookie().map((line) => line.split(';')[0] as string);
}

/** The `name=value` of the first Set-Cookie. */
export function cookieOf(response: Response): string {
  const [cookie] = cookiesOf(response);
  if (!cookie) throw new Error(`no Set-Cookie (status ${response.status})`);
  return cookie;
}

export function page(
  url: string,
  cookie?: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    redirect: 'manual',
    headers: { ...NAVIGATE, ...(cookie ? { cookie } : {}), ...headers },
  });
}

/**
 * Posts a form as a browser does from the page that shows it: with that page's CSRF token, the
 * pre-login cookie the login page sets, and our Origin. `formPage` is where the form is shown.
 */
export async function postForm(
  url: string,
  fields: Record<string, string>,
  options: { cookie?: string; formPage?: string; headers?: Record<string, string> } = {},
): Promise<{ response: Response; csrf: string; preLogin: string[] }> {
  const target = new URL(url);
  const formPage =
    options.formPage ??
    (['/login', '/signup'].includes(target.pathname) ? target.pathname : '/dashboard');
  const shown = await page(`${target.origin}${formPage}`, options.cookie, options.headers);
  const csrf = /name="csrf" value="([^"]+)"/.exec(await shown.text())?.[1];
  if (!csrf) throw new Error(`no CSRF token on ${formPage} (status ${shown.status})`);
  const preLogin = cookiesOf(shown).filter((pair) => pair.startsWith('__Host-csrf='));
  const cookies = [options.cookie, ...preLogin].filter(Boolean).join('; ');
  const response = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      origin: target.origin,
      ...NAVIGATE,
      ...(cookies ? { cookie: cookies } : {}),
      ...options.headers,
    },
    body: new URLSearchParams({ ...fields, csrf }),
  });
  return { response, csrf, preLogin };
}

export function apiLogin(url: string, username: string, password = PASSWORD): Promise<Response> {
  return fetch(`${url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: url },
    body: JSON.stringify({ username, password }),
  });
}

/** The JSON lines of a server's output (anything else, e.g. stderr text, is skipped). */
export function jsonLines(output: string): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

/** One sample's value from Prometheus text, e.g. `latchkey_logins_total{result="success"}`. */
export function sample(metrics: string, name: string): number | undefined {
  for (const line of metrics.split('\n')) {
    if (line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    if (line.slice(0, at) === name) return Number(line.slice(at + 1));
  }
  return undefined;
}

export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
