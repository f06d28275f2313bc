import { authenticate, withCookies } from 'latchkey/fetch';
import { latchkey, type User } from '../../../lib/latchkey.js';

/** Route handlers can set cookies, so they authenticate (and refresh) themselves. */
export async function GET(request: Request): Promise<Response> {
  const result = await authenticate<User>(latchkey, request);
  if (!result.ok) return result.response; // 401 JSON, or 503 with Retry-After
  return withCookies(Response.json({ user: result.auth.user }), result.setCookie);
}
