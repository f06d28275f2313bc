import { authenticate } from 'latchkey/fetch';
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
  return undefined;
}

export const config = { matcher: ['/dashboard/:path*'] };
