import { type Credentials, safeNextPath } from 'latchkey';
import { login } from 'latchkey/fetch';
import { fromThisSite, latchkey, seeded } from '../../lib/latchkey.js';

const LOGIN_PAGE = `<!doctype html><title>Sign in</title>
<form method="post"><input name="username"> <input name="password" type="password">
<button>Sign in</button></form>`;

export function GET(): Response {
  return new Response(LOGIN_PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } });
}

/** JSON in, JSON out; a form post is sent on to `?next=` (or /dashboard). */
export async function POST(request: Request): Promise<Response> {
  await seeded;
  // Login CSRF: another site's form must not sign the browser in to an account it chose.
  if (!fromThisSite(request)) return Response.json({ error: 'cross_site' }, { status: 403 });
  const form = request.headers.get('content-type')?.startsWith('application/x-www-form-urlencoded');
  // Any shape will do: login checks every field itself.
  const credentials: Credentials = form
    ? Object.fromEntries(await request.formData())
    : ((await request.json().catch(() => ({}))) as Credentials);
  // Behind a proxy you trust, pass the client address: login(latchkey, request, credentials, { ip }).
  const result = await login(latchkey, request, credentials);
  if (!result.ok && result.error === 'too_many_attempts') {
    const retryAfter = String(result.retryAfterSeconds);
    return Response.json(
      { error: result.error },
      { status: 429, headers: { 'retry-after': retryAfter } },
    );
  }
  if (!result.ok) return Response.json({ error: result.error }, { status: 401 });
  const headers = new Headers();
  for (const value of result.setCookie) headers.append('set-cookie', value);
  if (!form) return Response.json({ user: result.user }, { headers });
  const next = safeNextPath(new URL(request.url).searchParams.get('next')) ?? '/dashboard';
  headers.set('location', next);
  return new Response(null, { status: 303, headers });
}
