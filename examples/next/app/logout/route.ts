import { logout } from 'latchkey/fetch';
import { latchkey } from '../../lib/latchkey.js';

export async function POST(request: Request): Promise<Response> {
  const headers = new Headers({ location: '/login' });
  for (const value of await logout(latchkey, request)) headers.append('set-cookie', value);
  return new Response(null, { status: 303, headers });
}
