import { type Latchkey, StoreUnavailableError } from 'latchkey';

/** An API request carrying a session token, as a browser's fetch would send it. */
export function requestWith(token: string): Request {
  return new Request('http://localhost/api/me', {
    headers: { cookie: `__Host-session=${token}`, accept: 'application/json' },
  });
}

/** Validates until the store answers again (it reconnects by itself); gives the time it took. */
export async function untilAnswering(auth: Latchkey, token: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      await auth.validate(token);
      return Date.now() - started;
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      if (Date.now() - started > 15_000) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
