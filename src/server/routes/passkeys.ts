import { methodsOf, type Passkeys } from '../../index.js';
import { loginFailure, retryAfterOf, throttledJson } from '../answers.js';
import { jsonReply, type Reply, readJsonObject } from '../http.js';
import { PASSKEY_SCRIPT, webauthnLibrary } from '../passkeys-script.js';
import { loginContext } from '../request.js';
import { PRE_LOGIN_COOKIE, type Routes, type Site } from '../site.js';
import type { TwoFactorActions } from '../two-factor-actions.js';

/**
 * Passkeys' JSON ceremonies (each an options call, then the browser's answer) and the scripts
 * the pages load for them. The challenge travels in its own cookie, never in a body or a URL.
 */
export function passkeyRoutes(site: Site, actions: TwoFactorActions, passkeys: Passkeys): Routes {
  const { latchkey } = site;
  const { factors } = actions;
  const ended = passkeys.cookie.blank();

  return {
    '/assets/passkeys.js': {
      GET: async () => ({ status: 200, type: 'js', body: PASSKEY_SCRIPT, cacheable: true }),
    },
    '/assets/simplewebauthn-browser.js': {
      GET: async () => ({ status: 200, type: 'js', body: webauthnLibrary(), cacheable: true }),
    },
    // Adding a passkey is a change to the account's factors: level 2 when it has one, and a
    // recent password (as for TOTP), checked when the ceremony starts.
    '/api/passkeys/register/options': {
      POST: site.json(async (ctx, signedin, body) => {
        const secured = await actions.secure(ctx, signedin, body.currentPassword);
        if (!secured.ok) {
          if (secured.error === 'too_many_attempts') {
            return throttledJson(secured.retryAfterSeconds);
          }
          return jsonReply(secured.error === 'second_factor_required' ? 401 : 403, {
            error: secured.error,
          });
        }
        const { session } = secured;
        const ceremony = await passkeys.beginRegistration(session.userId, signedin.user.username);
        return jsonReply(
          200,
          { options: ceremony.options },
          { setCookie: [...secured.setCookie, ceremony.setCookie] },
        );
      }),
    },
    '/api/passkeys/register': {
      POST: site.json(async (ctx, signedin, body) => {
        const { session } = signedin;
        const added = await passkeys.finishRegistration(
          session.userId,
          body.response,
          ctx.cookie,
          body.name,
        );
        if (!added.ok) return jsonReply(400, { error: added.error }, { setCookie: [ended] });
        // The session just proved the new passkey, as a TOTP enrolment proves its first code.
        const rotated = await latchkey.rotateSession(session, {
          aal: 2,
          amr: methodsOf([...session.amr, ...added.amr]),
        });
        const recoveryCodes = await factors.recoveryCodesIfNone(session.userId);
        return jsonReply(
          201,
          { factor: added.factor, recoveryCodes },
          { setCookie: [...(rotated?.setCookie ?? []), ended] },
        );
      }),
    },
    '/api/login/passkey/options': {
      POST: async () => {
        const ceremony = await passkeys.beginAuthentication(null);
        return jsonReply(200, { options: ceremony.options }, { setCookie: [ceremony.setCookie] });
      },
    },
    '/api/login/passkey': {
      POST: async (ctx) => {
        const body = await readJsonObject(ctx.req);
        if (!body.ok) return body.reply;
        const result = await latchkey.loginWithPasskey(body.value.response, loginContext(ctx));
        site.observer?.loginEnded(ctx.req, result);
        if (!result.ok) {
          if (result.error === 'second_factor_required') return invalid(ended);
          const { status } = loginFailure(result);
          return jsonReply(
            status,
            { error: result.error },
            { headers: retryAfterOf(result), setCookie: [ended] },
          );
        }
        return jsonReply(
          200,
          { user: result.user, aal: result.session.aal },
          { setCookie: [...result.setCookie, ended, PRE_LOGIN_COOKIE.blank()] },
        );
      },
    },
    // The second step's options: for the pending login's account, else a step-up of the session.
    '/api/login/second-factor/passkey/options': {
      POST: async (ctx) => {
        const pending = await latchkey.pendingPasskeyOptions(ctx.cookie);
        const session = pending ? null : await site.currentSession(ctx);
        const ceremony =
          pending ?? (session ? await passkeys.beginAuthentication(session.userId) : null);
        if (!ceremony) return jsonReply(401, { error: 'no_pending_login' });
        return jsonReply(200, { options: ceremony.options }, { setCookie: [ceremony.setCookie] });
      },
    },
  };
}

function invalid(ended: string): Reply {
  return jsonReply(401, { error: 'invalid_credentials' }, { setCookie: [ended] });
}
