import { logout } from 'latchkey/fetch';
import { fromThisSite, latchkey } from '../../lib/latchkey.js';

export async function POST(request: Request): Promise<Response> {
  if (!fromThisSite(request)) return Response.json({ error: 'cross_site' }, { status: 403 });
  const headers = new Headers({ location: '/login' });
  for (const value of await logout(latchkey, request)) headers.append('set-cookie', value);
  return new Response(null, { status: 303, headers });
}
