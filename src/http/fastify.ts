import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Credentials, Latchkey, LoginContext, LoginResult } from '../core/latchkey.js';
import type { LoggedIn, SecondFactorFailure, SecondFactorProof } from '../core/second-step.js';
import { requestInfo } from './node.js';
import {
  type Auth,
  authOf,
  completeLoginFor,
  guardDenial,
  loginCookies,
  loginFor,
  type RegisteredUser,
  type RequestInfo,
  RequestStates,
  type RequireOptions,
  requireOptions,
} from './shared.js';

export type { Auth, RegisteredUser, RequireOptions } from './shared.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the latchkey plugin: who is making the request, or null. */
    auth: Auth<RegisteredUser> | null;
  }
  interface FastifyReply {
    /**
     * Checks credentials and starts a session: sets the cookie and `request.auth` on success. Any
     * session the request carried is ended first. Uses `request.ip` (set `trustProxy` behind one).
     * On `second_factor_required`, sets the pending-login cookie: finish with `completeLogin`.
     */
    login(credentials: Credentials): Promise<LoginResult>;
    /**
     * Completes the request's pending login with a second factor: the session starts at level 2,
     * with its cookie and `request.auth`. Sets the result's cookies either way. Needs `secondFactor`.
     */
    completeLogin(proof: SecondFactorProof): Promise<LoggedIn | SecondFactorFailure>;
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
    const result = await loginFor(latchkey, states.find(request), credentials, contextOf(request));
    const setCookie = loginCookies(result);
    if (setCookie.length > 0) this.header('set-cookie', [...setCookie]);
    if (result.ok) request.auth = authOf(result.session);
    return result;
  });
  fastify.decorateReply('completeLogin', async function completeLogin(this: FastifyReply, proof) {
    const { request } = this;
    const state = states.find(request);
    const result = await completeLoginFor(latchkey, state, proof, contextOf(request));
    if (result.setCookie.length > 0) this.header('set-cookie', [...result.setCookie]);
    if (result.ok) request.auth = authOf(result.session);
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

/** A `preHandler` that answers the requests it does not let through. */
export type Guard = (
  request: FastifyRequest,
  reply: FastifyReply,
) => Promise<FastifyReply | undefined>;

/** `requireAuth` used as is: a session at any level. */
const sessionGuard = guardWith({});

/**
 * `preHandler` guard: lets requests with a session through; answers the others exactly as the
 * core says (303 to login for pages, 401 JSON for API calls, 503 with Retry-After when the store
 * is down). Used as is (`preHandler: requireAuth`), or made with options:
 * `preHandler: requireAuth({ aal: 2 })` also sends level-1 sessions to the second-factor step.
 */
export function requireAuth(options?: RequireOptions): Guard;
export function requireAuth(
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply | undefined>;
export function requireAuth(
  first?: RequireOptions | FastifyRequest,
  reply?: FastifyReply,
): Guard | Promise<FastifyReply | undefined> {
  // Fastify calls a preHandler with the reply; the factory is called without one.
  if (reply === undefined) return guardWith(requireOptions(first as RequireOptions | undefined));
  return sessionGuard(first as FastifyRequest, reply);
}

function guardWith(options: RequireOptions): Guard {
  return async function latchkeyRequireAuth(request, reply) {
    const state = states.of(request);
    const denial = await guardDenial(state, request.auth?.session ?? null, options);
    if (!denial) return undefined;
    // A Buffer keeps the core's Content-Type as is (Fastify adds a charset to strings).
    return reply.code(denial.status).headers(denial.headers).send(Buffer.from(denial.body));
  };
}

function contextOf(request: FastifyRequest): LoginContext {
  const userAgent = request.headers['user-agent'] ?? null;
  return { ip: request.ip, userAgent, cookie: request.headers.cookie ?? null };
}

/** Ip and user agent are recorded on a session restored from a remember-me cookie. */
function infoOf(request: FastifyRequest): RequestInfo {
  const userAgent = request.headers['user-agent'] ?? null;
  return { ...requestInfo(request.raw), ip: request.ip, userAgent };
}
