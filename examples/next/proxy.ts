import { authenticate, withCookies } from 'latchkey/fetch';
import { latchkey } from './lib/latchkey.js';

/**
 * Next.js 16 `proxy.ts` (runs on Node.js): pages under /dashboard need a session. Without one,
 * the core's answer is returned as is (303 to /login?next=…, or 503 while the store is down).
 * Returning nothing lets the request through; the session was refreshed here, where a response
 * could carry cookies, so pages only read it.
 */
export async function proxy(request: Request): Promise<Response | undefined> {
  const result = await authenticate(latchkey, request);
  if (!result.ok) return result.response;
  if (result.setCookie.length === 0) return undefined;
  // A session restored from a remember-me cookie: come back with the new cookies, so the page
  // (which reads the request's cookies) sees the new session.
  const { pathname, search } = new URL(request.url);
  const again = new Response(null, { status: 307, headers: { location: pathname + search } });
  return withCookies(again, result.setCookie);
}

export const config = { matcher: ['/dashboard/:path*'] };
