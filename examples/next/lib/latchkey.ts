import { type Duration, isSameOrigin, Latchkey, MemoryStore } from 'latchkey';
import { type HeaderReader, readSession } from 'latchkey/fetch';

/** The snapshot latchkey keeps for its own accounts. */
export type User = { id: string; username: string };

export const demoUser = { username: 'ada', password: 'correct horse battery staple' };

// One instance per server process. Use SqliteStore (latchkey/stores/sqlite) to survive restarts.
const store = new MemoryStore();
export const latchkey = new Latchkey({
  store,
  users: store,
  throttle: { store }, // failed logins per account (and per IP when login is given one)
  idleTimeout: (process.env.LATCHKEY_IDLE_TIMEOUT ?? '30m') as Duration, // checked at construction
});

/** Resolves once the demo account exists. */
export const seeded = latchkey.createUser(demoUser.username, demoUser.password);

/**
 * The signed-in user while rendering a Server Component: `currentUser(await headers())`.
 * Read-only (rendering cannot set cookies); `proxy.ts` has already refreshed the session.
 */
export async function currentUser(headers: HeaderReader): Promise<User | null> {
  const auth = await readSession<User>(latchkey, headers);
  return auth?.user ?? null;
}

/** Whether an unsafe request comes from this site's own pages (Fetch Metadata, else Origin). */
export function fromThisSite(request: Request): boolean {
  const headers = {
    method: request.method,
    origin: request.headers.get('origin'),
    referer: request.headers.get('referer'),
    secFetchSite: request.headers.get('sec-fetch-site'),
  };
  return isSameOrigin(headers, new URL(request.url).origin);
}
