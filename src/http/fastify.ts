import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Credentials, Latchkey, LoginResult } from '../core/latchkey.js';
import { requestInfo } from './node.js';
import {
  type Auth,
  authOf,
  denialOf,
  loginFor,
  type RegisteredUser,
  type RequestInfo,
  RequestStates,
} from './shared.js';

export type { Auth, RegisteredUser } from './shared.js';

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

const states = new RequestStates<FastifyRequest>(
  'latchkey/fastify: register latchkeyPlugin in this scope first',
);

const plugin: FastifyPluginAsync<LatchkeyPluginOptions> = async (fastify, { latchkey }) => {
  fastify.decorateRequest('auth', null);
  fastify.decorateReply('login', async function login(this: FastifyReply, credentials) {
    const { request } = this;
    const result = await loginFor(latchkey, states.find(request), credentials, {
      ip: request.ip,
      userAgent: request.headers['user-agent'] ?? null,
      cookie: request.headers.cookie ?? null,
    });
    if (result.ok) {
      this.header('set-cookie', [...result.setCookie]);
      request.auth = authOf(result.session);
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
    const info = infoOf(request);
    const result = await latchkey.authenticate(info);
    if (result.setCookie.length > 0) reply.header('set-cookie', [...result.setCookie]);
    request.auth = result.ok ? authOf(result.session) : null;
    states.record(request, latchkey, info, result);
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
  const state = states.of(request);
  if (request.auth) return undefined;
  const denial = await denialOf(state);
  if (!denial) return undefined;
  // A Buffer keeps the core's Content-Type as is (Fastify adds a charset to strings).
  return reply.code(denial.status).headers(denial.headers).send(Buffer.from(denial.body));
}

/** Ip and user agent are recorded on a session restored from a remember-me cookie. */
function infoOf(request: FastifyRequest): RequestInfo {
  const userAgent = request.headers['user-agent'] ?? null;
  return { ...requestInfo(request.raw), ip: request.ip, userAgent };
}
