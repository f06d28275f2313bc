import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Credentials, Denial, Latchkey, LoginResult, RequestInfo } from '../core/latchkey.js';
import type { SessionRecord } from '../core/store.js';
import type { Auth, RegisteredUser } from './fetch.js';
import { requestInfo } from './node.js';

export type { Auth, RegisteredUser } from './fetch.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the latchkey plugin: who is making the request, or null. */
    auth: Auth<RegisteredUser> | null;
  }
  interface FastifyReply {
    /**
     * Checks credentials and starts a session: sets the cookie and `request.auth` on success. Any
     * session the request carried is ended first. Uses `request.ip` (set `trustProxy` behind one).
     */
    login(credentials: Credentials): Promise<LoginResult>;
    /** Ends the request's session and clears its cookie; `request.auth` becomes null. */
    logout(): Promise<void>;
  }
}

export interface LatchkeyPluginOptions {
  latchkey: Latchkey;
}

/** What the plugin learnt about one request, for {@link requireAuth}. */
interface RequestState {
  readonly latchkey: Latchkey;
  /** Why the request has no session (the core's own answer), or null when it has one. */
  denial: Denial | null;
}

const states = new WeakMap<FastifyRequest, RequestState>();

const plugin: FastifyPluginAsync<LatchkeyPluginOptions> = async (fastify, { latchkey }) => {
  fastify.decorateRequest('auth', null);
  fastify.decorateReply('login', async function login(this: FastifyReply, credentials) {
    const { request } = this;
    const result = await latchkey.login(credentials, {
      ip: request.ip,
      userAgent: request.headers['user-agent'] ?? null,
      cookie: request.headers.cookie ?? null,
    });
    if (result.ok) {
      this.header('set-cookie', [...result.setCookie]);
      request.auth = authOf(result.session);
      const state = states.get(request);
      if (state) state.denial = null;
    }
    return result;
  });
  fastify.decorateReply('logout', async function logout(this: FastifyReply) {
    const { request } = this;
    const { setCookie } = await latchkey.endSession(request.headers.cookie ?? null);
    this.header('set-cookie', [...setCookie]);
    request.auth = null;
  });
  fastify.addHook('onRequest', async function latchkeyAuthenticate(request, reply) {
    const result = await latchkey.authenticate(infoOf(request));
    if (result.setCookie.length > 0) reply.header('set-cookie', [...result.setCookie]);
    request.auth = result.ok ? authOf(result.session) : null;
    states.set(request, { latchkey, denial: result.ok ? null : result.denial });
  });
};

/**
 * The plugin: authenticates every request in the scope it is registered in (one store read) and
 * decorates `request.auth`, `reply.login()` and `reply.logout()`. Like fastify-plugin, it skips
 * encapsulation of its own scope, so the decorators reach the routes beside the registration.
 *
 * ```ts
 * await app.register(latchkeyPlugin, { latchkey });
 * app.get('/me', { preHandler: requireAuth }, (request) => request.auth?.user);
 * ```
 */
export const latchkeyPlugin = Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'latchkey',
  [Symbol.for('plugin-meta')]: { name: 'latchkey', fastify: '5.x' },
});

/**
 * `preHandler` guard: lets requests with a session through; answers the others exactly as the
 * core says (303 to login for pages, 401 JSON for API calls, 503 with Retry-After when the store
 * is down).
 */
export async function requireAuth(
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply | undefined> {
  const state = states.get(request);
  if (!state) throw new Error('latchkey/fastify: register latchkeyPlugin in this scope first');
  if (request.auth) return undefined;
  // A session ended during this request (logout) has no denial yet: ask the core.
  const denial = state.denial ?? (await denialFor(state.latchkey, request));
  if (!denial) return undefined;
  // A Buffer keeps the core's Content-Type as is (Fastify adds a charset to strings).
  return reply.code(denial.status).headers(denial.headers).send(Buffer.from(denial.body));
}

async function denialFor(latchkey: Latchkey, request: FastifyRequest): Promise<Denial | null> {
  const result = await latchkey.authenticate(infoOf(request));
  return result.ok ? null : result.denial;
}

/** Ip and user agent are recorded on a session restored from a remember-me cookie. */
function infoOf(request: FastifyRequest): RequestInfo {
  const userAgent = request.headers['user-agent'] ?? null;
  return { ...requestInfo(request.raw), ip: request.ip, userAgent };
}

function authOf(session: SessionRecord): Auth<RegisteredUser> {
  // The snapshot is what the app stored at login; LatchkeyRegister is the app's word for its shape.
  return { user: session.user as RegisteredUser, session };
}
