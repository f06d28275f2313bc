import type { Request, RequestHandler, Response } from 'express';
import type { Credentials, Latchkey, LoginContext, LoginResult } from '../core/latchkey.js';
import type { LoggedIn, SecondFactorFailure, SecondFactorProof } from '../core/second-step.js';
import { requestInfo, sendDenial } from './node.js';
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

declare global {
  namespace Express {
    interface Request {
      /** Set by `authenticate(latchkey)`: who is making the request, or null. */
      auth: Auth<RegisteredUser> | null;
    }
  }
}

const states = new RequestStates<Request>(
  'latchkey/express: app.use(authenticate(latchkey)) must run first',
);

/**
 * Middleware: authenticates every request (one store read) and sets `req.auth`. Never answers
 * by itself; mount {@link requireAuth} on the routes that need a session.
 */
export function authenticate(latchkey: Latchkey): RequestHandler {
  return async function latchkeyAuthenticate(req, res, next) {
    const info = infoOf(req);
    const result = await latchkey.authenticate(info);
    if (result.setCookie.length > 0) res.append('Set-Cookie', [...result.setCookie]);
    req.auth = result.ok ? authOf(result.session) : null;
    states.record(req, latchkey, info, result);
    next();
  };
}

/**
 * Guard: lets requests with a session through; answers the others exactly as the core says
 * (303 to login for pages, 401 JSON for API calls, 503 with Retry-After when the store is down).
 * `requireAuth({ aal: 2 })` also sends level-1 sessions to the second-factor step.
 */
export function requireAuth(options?: RequireOptions): RequestHandler {
  const required = requireOptions(options);
  return async function latchkeyRequireAuth(req, res, next) {
    const state = states.of(req);
    const denial = await guardDenial(state, req.auth?.session ?? null, required);
    if (denial) sendDenial(res, denial);
    else next();
  };
}

/**
 * Checks credentials and starts a session: sets the cookie and `req.auth` on success. Any session
 * the request carried is ended first (no fixation). Uses `req.ip`, so set `trust proxy` behind one.
 * On `second_factor_required`, sets the pending-login cookie: finish with {@link completeLogin}.
 */
export async function login(
  req: Request,
  res: Response,
  credentials: Credentials,
): Promise<LoginResult> {
  const state = states.of(req);
  const result = await loginFor(state.latchkey, state, credentials, contextOf(req));
  const setCookie = loginCookies(result);
  if (setCookie.length > 0) res.append('Set-Cookie', [...setCookie]);
  if (result.ok) req.auth = authOf(result.session);
  return result;
}

/**
 * Completes the request's pending login with a second factor: the session starts at assurance
 * level 2, with its cookie and `req.auth`. Sets the result's cookies either way (they end the
 * pending login when it is over). Needs `secondFactor`.
 */
export async function completeLogin(
  req: Request,
  res: Response,
  proof: SecondFactorProof,
): Promise<LoggedIn | SecondFactorFailure> {
  const state = states.of(req);
  const result = await completeLoginFor(state.latchkey, state, proof, contextOf(req));
  if (result.setCookie.length > 0) res.append('Set-Cookie', [...result.setCookie]);
  if (result.ok) req.auth = authOf(result.session);
  return result;
}

/** Ends the request's session and clears its cookie; `req.auth` becomes null. */
export async function logout(req: Request, res: Response): Promise<void> {
  const { setCookie } = await states.of(req).latchkey.endSession(req.get('cookie') ?? null);
  res.append('Set-Cookie', [...setCookie]);
  req.auth = null;
}

function contextOf(req: Request): LoginContext {
  return {
    ip: req.ip ?? null,
    userAgent: req.get('user-agent') ?? null,
    cookie: req.get('cookie') ?? null,
  };
}

function infoOf(req: Request): RequestInfo {
  // originalUrl keeps the mount path, so `next=` names the page the browser asked for; ip and
  // user agent are recorded on a session restored from a remember-me cookie.
  const userAgent = req.get('user-agent') ?? null;
  return { ...requestInfo(req), url: req.originalUrl, ip: req.ip ?? null, userAgent };
}
