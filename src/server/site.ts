import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import {
  type Authentication,
  type CsrfTokens,
  HostCookie,
  type Latchkey,
  type LoginResult,
  type SessionRecord,
} from '../index.js';
import { csrfFailure, formFailure } from './answers.js';
import {
  denialReply,
  formFields,
  htmlReply,
  type Reply,
  readBody,
  readJsonObject,
} from './http.js';
import {
  type Context,
  hasBody,
  isCrossSiteNavigation,
  RENAVIGATED,
  requestInfo,
} from './request.js';
import { type PageUser, renavigatePage, userOf, type Viewer } from './views.js';

/**
 * Told how each request's authentication and each login ended, and whom a request acts as
 * (metrics, the access line's user).
 */
export interface AuthObserver {
  authenticated(req: IncomingMessage, auth: Authentication, seconds: number): void;
  /** A password or passkey login gave `result`, or threw (`error`: the store was down). */
  loginEnded(req: IncomingMessage, result: LoginResult | 'error'): void;
  /** The request signed `userId` up, completed their login's second step, or logged them out. */
  actingAs(req: IncomingMessage, userId: string): void;
}

export type Route = (ctx: Context) => Promise<Reply>;

/** Routes by path, then method; a `GET` route answers `HEAD` too. */
export type Routes = Record<string, Partial<Record<string, Route>>>;

export type Fields = Record<string, string | undefined>;

export interface Signedin {
  readonly session: SessionRecord;
  readonly user: PageUser;
  /** Cookies authentication asked to set (a session restored from remember-me). */
  readonly setCookie: readonly string[];
}

/** The cookies and headers that end this browser's sign-in. */
export interface SignOut {
  readonly setCookie: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
}

export interface SiteOptions {
  readonly latchkey: Latchkey;
  readonly csrf: CsrfTokens;
  readonly allowSignup: boolean;
  /** Where the login page may send a browser back to; null for nowhere but the dashboard. */
  readonly returnTarget: (value: string | null | undefined) => string | null;
  readonly observer?: AuthObserver | undefined;
  /** Forward-auth hosts (`host` or `host:port`) whose sessions need a second factor. */
  readonly twoFactorHosts?: ReadonlySet<string>;
  /** The time pages show relative times from; `Date.now` by default. */
  readonly clock?: (() => number) | undefined;
}

/** Binds the login and sign-up forms' CSRF tokens before there is a session. */
export const PRE_LOGIN_COOKIE = new HostCookie('__Host-csrf');
const PRE_LOGIN_VALUE = /^[A-Za-z0-9_-]{43}$/;
const FORM = 'application/x-www-form-urlencoded';

/** What every route shares: the engine, the signed-in checks and the CSRF tokens. */
export class Site {
  readonly latchkey: Latchkey;
  readonly allowSignup: boolean;
  readonly returnTarget: SiteOptions['returnTarget'];
  readonly observer: AuthObserver | undefined;
  readonly clock: () => number;
  private readonly csrf: CsrfTokens;
  private readonly twoFactorHosts: ReadonlySet<string>;

  constructor(options: SiteOptions) {
    this.latchkey = options.latchkey;
    this.csrf = options.csrf;
    this.allowSignup = options.allowSignup;
    this.returnTarget = options.returnTarget;
    this.observer = options.observer;
    this.twoFactorHosts = options.twoFactorHosts ?? new Set();
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Whether a session needs assurance level 2 for `target` (an absolute URL, or a path on
   * `host`): its host has the forward-auth policy `two_factor`.
   */
  needsSecondFactor(target: string | null, host: string | null): boolean {
    if (this.twoFactorHosts.size === 0) return false;
    let targetHost = host;
    if (target !== null && !target.startsWith('/')) {
      try {
        targetHost = new URL(target).host;
      } catch {
        return false;
      }
    }
    if (targetHost === null) return false;
    const name = targetHost.toLowerCase();
    const hostname = name.replace(/:\d+$/, '');
    return this.twoFactorHosts.has(name) || this.twoFactorHosts.has(hostname);
  }

  /** The request's sign-in, timed and told to the observer. */
  async authenticate(ctx: Context, api: boolean, cookie = ctx.cookie): Promise<Authentication> {
    const started = performance.now();
    const auth = await this.latchkey.authenticate({ ...requestInfo(ctx, api), cookie });
    this.observer?.authenticated(ctx.req, auth, (performance.now() - started) / 1000);
    return auth;
  }

  /** A page's signed-in user, or the denial (a cross-site navigation is sent round once more). */
  async pageSession(ctx: Context): Promise<Signedin | Reply> {
    const auth = await this.authenticate(ctx, false);
    if (auth.ok) return signedinOf(auth.session, auth.setCookie);
    if (auth.reason === 'missing' && isCrossSiteNavigation(ctx)) {
      const marker = `${ctx.query.size > 0 ? '&' : '?'}${RENAVIGATED}=1`;
      return htmlReply(200, renavigatePage(`${ctx.req.url ?? '/'}${marker}`));
    }
    return denialReply(auth.denial, auth.setCookie);
  }

  async apiSession(ctx: Context): Promise<Signedin | Reply> {
    const auth = await this.authenticate(ctx, true);
    if (auth.ok) return signedinOf(auth.session, auth.setCookie);
    return denialReply(auth.denial, auth.setCookie);
  }

  viewerOf(signedin: { session: SessionRecord; user: PageUser }): Viewer {
    return { user: signedin.user, csrf: this.csrf.tokenFor(`session:${signedin.session.id}`) };
  }

  /** Whether `token` is the CSRF token of `session`'s forms. */
  formTokenValid(session: SessionRecord, token: unknown): boolean {
    return this.csrf.verify(`session:${session.id}`, token);
  }

  /** The login and sign-up forms' token, bound to the `__Host-csrf` cookie (set when absent). */
  preLoginToken(ctx: Context): { csrf: string; setCookie: string[] } {
    const value = PRE_LOGIN_COOKIE.read(ctx.cookie).value;
    if (value !== null && PRE_LOGIN_VALUE.test(value)) {
      return { csrf: this.csrf.tokenFor(`login:${value}`), setCookie: [] };
    }
    const fresh = randomBytes(32).toString('base64url');
    return {
      csrf: this.csrf.tokenFor(`login:${fresh}`),
      setCookie: [PRE_LOGIN_COOKIE.serialize(fresh)],
    };
  }

  preLoginTokenValid(ctx: Context, token: unknown): boolean {
    const value = PRE_LOGIN_COOKIE.read(ctx.cookie).value;
    return (
      value !== null && PRE_LOGIN_VALUE.test(value) && this.csrf.verify(`login:${value}`, token)
    );
  }

  /** The request's session, read without falling back to remember-me. */
  async currentSession(ctx: Context): Promise<SessionRecord | null> {
    const token = this.latchkey.sessionCookie.read(ctx.cookie).value;
    return token === null ? null : (await this.latchkey.validate(token)).session;
  }

  /** The caller's own session with this id, or null: someone else's id looks unknown. */
  async ownSession(session: SessionRecord, id: unknown): Promise<SessionRecord | null> {
    if (typeof id !== 'string') return null;
    const sessions = await this.latchkey.listSessions(session.userId);
    return sessions.find((candidate) => candidate.id === id) ?? null;
  }

  /** An HTML page for a signed-in user. */
  page(render: (signedin: Signedin) => string | Promise<string>): Route {
    return async (ctx) => {
      const signedin = await this.pageSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      return htmlReply(200, await render(signedin), { setCookie: signedin.setCookie });
    };
  }

  /** A JSON call by a signed-in user. */
  api(handle: (ctx: Context, signedin: Signedin) => Promise<Reply>): Route {
    return async (ctx) => {
      const signedin = await this.apiSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      return withCookies(signedin, await handle(ctx, signedin));
    };
  }

  /** A form post by a signed-in user: the session and the form's CSRF token are checked first. */
  form(handle: (ctx: Context, signedin: Signedin, fields: Fields) => Promise<Reply>): Route {
    return async (ctx) => {
      const signedin = await this.pageSession(ctx);
      if (!isSignedin(signedin)) return signedin;
      const body = await readBody(ctx.req, FORM);
      if (!body.ok) return formFailure(body.status);
      const fields = formFields(body.text);
      if (!this.formTokenValid(signedin.session, fields.csrf)) {
        return csrfFailure(this.viewerOf(signedin), signedin.setCookie);
      }
      return withCookies(signedin, await handle(ctx, signedin, fields));
    };
  }

  /** A JSON call by a signed-in user; the body is optional but must be a JSON object if sent. */
  json(
    handle: (ctx: Context, signedin: Signedin, body: Record<string, unknown>) => Promise<Reply>,
  ): Route {
    return this.api(async (ctx, signedin) => {
      const body = await optionalJson(ctx);
      return body.ok ? handle(ctx, signedin, body.value) : body.reply;
    });
  }
}

export function signedinOf(session: SessionRecord, setCookie: readonly string[]): Signedin {
  return { session, user: userOf(session.user, session.userId), setCookie };
}

export function isSignedin(value: Signedin | Reply): value is Signedin {
  return 'session' in value;
}

function withCookies(signedin: Signedin, reply: Reply): Reply {
  // Most requests renew nothing: the reply as it is, not a copy.
  if (signedin.setCookie.length === 0) return reply;
  return { ...reply, setCookie: [...signedin.setCookie, ...(reply.setCookie ?? [])] };
}

/** A JSON object body if one was sent, `{}` for none, or the error reply. */
function optionalJson(
  ctx: Context,
): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; reply: Reply }> {
  if (!hasBody(ctx.req)) return Promise.resolve({ ok: true, value: {} });
  return readJsonObject(ctx.req);
}
