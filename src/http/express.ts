import type { Request, RequestHandler, Response } from 'express';
import type { Credentials, Latchkey, LoginResult } from '../core/latchkey.js';
import { requestInfo, sendDenial } from './node.js';
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
 */
export function requireAuth(): RequestHandler {
  return async function latchkeyRequireAuth(req, res, next) {
    const state = states.of(req);
    if (req.auth) return next();
    const denial = await denialOf(state);
    if (denial) sendDenial(res, denial);
    else next();
  };
}

/**
 * Checks credentials and starts a session: sets the cookie and `req.auth` on success. Any session
 * the request carried is ended first (no fixation). Uses `req.ip`, so set `trust proxy` behind one.
 */
export async function login(
  req: Request,
  res: Response,
  credentials: Credentials,
): Promise<LoginResult> {
  const state = states.of(req);
  const result = await loginFor(state.latchkey, state, credentials, {
    ip: req.ip ?? null,
    userAgent: req.get('user-agent') ?? null,
    cookie: req.get('cookie') ?? null,
  });
  if (result.ok) {
    res.append('Set-Cookie', [...result.setCookie]);
    req.auth = authOf(result.session);
  }
  return result;
}

/** Ends the request's session and clears its cookie; `req.auth` becomes null. */
export async function logout(req: Request, res: Response): Promise<void> {
  const { setCookie } = await states.of(req).latchkey.endSession(req.get('cookie') ?? null);
  res.append('Set-Cookie', [...setCookie]);
  req.auth = null;
}

function infoOf(req: Request): RequestInfo {
  // originalUrl keeps the mount path, so `next=` names the page the browser asked for; ip and
  // user agent are recorded on a session restored from a remember-me cookie.
  const userAgent = req.get('user-agent') ?? null;
  return { ...requestInfo(req), url: req.originalUrl, ip: req.ip ?? null, userAgent };
}
