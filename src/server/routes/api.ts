import type { SessionRecord } from '../../index.js';
import type { Actions, Unconfirmed } from '../actions.js';
import { loginFailure, retryAfterOf, throttledJson } from '../answers.js';
import { deviceName } from '../device-name.js';
import { jsonReply, type Reply, readJsonObject } from '../http.js';
import { isoTime } from '../iso-time.js';
import type { Route, Routes, Site } from '../site.js';

/** The JSON API: the same actions as the HTML forms, answered with status codes and JSON. */
export function apiRoutes(site: Site, actions: Actions): Routes {
  const { latchkey } = site;
  const routes: Routes = {
    '/api/me': {
      GET: site.api(async (_ctx, signedin) =>
        jsonReply(200, { user: signedin.user, session: sessionView(signedin.session) }),
      ),
    },
    '/api/sessions': {
      GET: site.api(async (_ctx, signedin) => {
        const sessions = await latchkey.listSessions(signedin.session.userId);
        return jsonReply(200, {
          sessions: sessions.map((session) => ({
            ...sessionView(session),
            device: deviceName(session.userAgent),
            aal: session.aal,
            amr: session.amr,
            current: session.id === signedin.session.id,
          })),
        });
      }),
    },
    '/api/login': {
      POST: async (ctx) => {
        const body = await readJsonObject(ctx.req);
        if (!body.ok) return body.reply;
        const result = await actions.login(ctx, body.value);
        if (!result.ok && result.error === 'second_factor_required') {
          const { methods, setCookie } = result;
          return jsonReply(401, { error: result.error, methods }, { setCookie });
        }
        if (!result.ok) {
          const { status } = loginFailure(result);
          return jsonReply(status, { error: result.error }, { headers: retryAfterOf(result) });
        }
        return jsonReply(200, { user: result.user }, { setCookie: result.setCookie });
      },
    },
    '/api/logout': {
      POST: async (ctx) => ({ status: 204, ...(await actions.logout(ctx)) }),
    },
    '/api/logout-everywhere': {
      POST: site.api(async (_ctx, signedin) => ({
        status: 204,
        ...(await actions.logoutEverywhere(signedin)),
      })),
    },
    '/api/sessions/revoke-others': {
      POST: site.json(async (ctx, signedin, body) => {
        const result = await actions.revokeOthers(ctx, signedin, body.currentPassword);
        if (!result.ok) return unconfirmed(result);
        return { status: 204, setCookie: result.setCookie };
      }),
    },
    '/api/password': {
      POST: site.json(async (ctx, signedin, body) => {
        const result = await actions.changePassword(ctx, signedin, {
          password: body.currentPassword,
          newPassword: body.newPassword,
          signOutOthers: body.signOutOthers !== false,
        });
        if (!result.ok) return unconfirmed(result);
        if (result.problem !== null) {
          const { code, message } = result.problem;
          return jsonReply(400, { error: code, message });
        }
        return { status: 204, setCookie: result.setCookie };
      }),
    },
    '/api/account/disable': {
      POST: site.json(async (ctx, signedin, body) => {
        const result = await actions.disableAccount(ctx, signedin, body.currentPassword);
        if (!result.ok) return unconfirmed(result);
        return { status: 204, ...result.signOut };
      }),
    },
  };
  if (site.allowSignup) {
    routes['/api/signup'] = {
      POST: async (ctx) => {
        const body = await readJsonObject(ctx.req);
        if (!body.ok) return body.reply;
        const result = await actions.signup(ctx, body.value);
        if (!result.ok) {
          if (result.error === 'too_many_attempts') return throttledJson(result.retryAfterSeconds);
          const status = result.error === 'username_taken' ? 409 : 400;
          return jsonReply(status, { error: result.error, message: result.message });
        }
        return jsonReply(201, { user: result.user }, { setCookie: result.setCookie });
      },
    };
  }
  return routes;
}

/** `DELETE /api/sessions/:id`: only the caller's own sessions; any other id is not found. */
export function revokeSessionRoute(site: Site, actions: Actions): (id: string) => Route {
  return (id) =>
    site.json(async (ctx, signedin, body) => {
      const result = await actions.revokeSession(ctx, signedin, id, body.currentPassword);
      if (result.ok) {
        if (result.ended === 'this device') return { status: 204, ...result.signOut };
        return { status: 204, setCookie: result.setCookie };
      }
      if (result.error === 'not_found') return jsonReply(404, { error: 'not_found' });
      return unconfirmed(result);
    });
}

function unconfirmed(result: Unconfirmed): Reply {
  if (result.error === 'too_many_attempts') return throttledJson(result.retryAfterSeconds);
  return jsonReply(403, { error: 'reauthentication_required' });
}

function sessionView(session: SessionRecord) {
  return {
    id: session.id,
    createdAt: isoTime(session.createdAt),
    lastSeenAt: isoTime(session.lastSeenAt),
    authenticatedAt: isoTime(session.authenticatedAt),
    idleExpiresAt: isoTime(session.idleExpiresAt),
    absoluteExpiresAt: isoTime(session.absoluteExpiresAt),
    ip: session.ip,
    userAgent: session.userAgent,
  };
}
