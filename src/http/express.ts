import type { Request, RequestHandler, Response } from 'express';
import type { Credentials, Denial, Latchkey, LoginResult, RequestInfo } from '../core/latchkey.js';
import type { Auth, RegisteredUser } from './fetch.js';
import { requestInfo, sendDenial } from './node.js';

export type { Auth, RegisteredUser } from './fetch.js';

declare global {
  namespace Express {
    interface Request {
      /** Set by `authenticate(latchkey)`: who is making the request, or null. */
      auth: Auth<RegisteredUser> | null;
    }
  }
}

/** What the middleware learnt about one request, for the guard and the login/logout helpers. */
interface RequestState {
  readonly latchkey: Latchkey;
  /** Why the request has no session (the core's own answer), or null when it has one. */
  denial: Denial | null;
}

const states = new WeakMap<Request, RequestState>();

/**
 * Middleware: authenticates every request (one store read) and sets `req.auth`. Never answers
 * by itself; mount {@link requireAuth} on the routes that need a session.
 */
export function authenticate(latchkey: Latchkey): RequestHandler {
  return async function latchkeyAuthenticate(req, res, next) {
    const result = await latchkey.authenticate(infoOf(req));
    if (result.setCookie.length > 0) res.append('Set-Cookie', [...result.setCookie]);
    req.auth = result.ok ? authOf(result.session) : null;
    states.set(req, { latchkey, denial: result.ok ? null : result.denial });
    next();
  };
}

/**
 * Guard: lets requests with a session through; answers the others exactly as the core says
 * (303 to login for pages, 401 JSON for API calls, 503 with Retry-After when the store is down).
 */
export function requireAuth(): RequestHandler {
  return async function latchkeyRequireAuth(req, res, next) {
    const state = stateOf(req);
    if (req.auth) return next();
    // A session ended during this request (logout) has no denial yet: ask the core.
    const denial = state.denial ?? (await denialFor(state.latchkey, req));
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
  const state = stateOf(req);
  const result = await state.latchkey.login(credentials, {
    ip: req.ip ?? null,
    userAgent: req.get('user-agent') ?? null,
    cookie: req.get('cookie') ?? null,
  });
  if (result.ok) {
    res.append('Set-Cookie', [...result.setCookie]);
    req.auth = authOf(result.session);
    state.denial = null;
  }
  return result;
}

/** Ends the request's session and clears its cookie; `req.auth` becomes null. */
export async function logout(req: Request, res: Response): Promise<void> {
  const state = stateOf(req);
  const { setCookie } = await state.latchkey.endSession(req.get('cookie') ?? null);
  res.append('Set-Cookie', [...setCookie]);
  req.auth = null;
}

function infoOf(req: Request): RequestInfo {
  // originalUrl keeps the mount path, so `next=` names the page the browser asked for; ip and
  // user agent are recorded on a session restored from a remember-me cookie.
  const userAgent = req.get('user-agent') ?? null;
  return { ...requestInfo(req), url: req.originalUrl, ip: req.ip ?? null, userAgent };
}

async function denialFor(latchkey: Latchkey, req: Request): Promise<Denial | null> {
  const result = await latchkey.authenticate(infoOf(req));
  return result.ok ? null : result.denial;
}

function stateOf(req: Request): RequestState {
  const state = states.get(req);
  if (state) return state;
  throw new Error('latchkey/express: app.use(authenticate(latchkey)) must run first');
}

function authOf(session: Auth['session']): Auth<RegisteredUser> {
  // The snapshot is what the app stored at login; LatchkeyRegister is the app's word for its shape.
  return { user: session.user as RegisteredUser, session };
}
