import { htmlReply, redirect } from '../http.js';
import { header, nextOf } from '../request.js';
import { isSignedin, type Routes, type Site } from '../site.js';
import { STYLESHEET } from '../style.js';
import {
  dashboardPage,
  loginPage,
  passwordPage,
  profilePage,
  sessionsPage,
  signupPage,
} from '../views.js';

/** The HTML pages (`GET`), and the stylesheet they load. */
export function pageRoutes(site: Site): Routes {
  const { latchkey } = site;
  const routes: Routes = {
    '/': {
      GET: async (ctx) => {
        const signedin = await site.pageSession(ctx);
        if (isSignedin(signedin)) return redirect('/dashboard', { setCookie: signedin.setCookie });
        return signedin.status === 303
          ? redirect('/login', { setCookie: signedin.setCookie })
          : signedin;
      },
    },
    '/login': {
      GET: async (ctx) => {
        const next = site.returnTarget(nextOf(ctx));
        const auth = await site.authenticate(ctx, false);
        if (auth.ok) {
          const { session, setCookie } = auth;
          if (session.aal < 2 && site.needsSecondFactor(next, header(ctx.req, 'host'))) {
            const step = `${latchkey.secondFactorPath}?next=${encodeURIComponent(next ?? '/dashboard')}`;
            return redirect(step, { setCookie });
          }
          return redirect(next ?? '/dashboard', { setCookie });
        }
        const token = site.preLoginToken(ctx);
        const page = loginPage({
          csrf: token.csrf,
          next,
          allowSignup: site.allowSignup,
          passkeys: latchkey.passkeys !== null,
        });
        return htmlReply(200, page, { setCookie: [...auth.setCookie, ...token.setCookie] });
      },
    },
    '/dashboard': {
      GET: site.page((signedin) => dashboardPage(site.viewerOf(signedin), signedin.session)),
    },
    '/profile': {
      GET: site.page((signedin) => profilePage(site.viewerOf(signedin), signedin.session)),
    },
    '/sessions': {
      GET: site.page(async (signedin) => {
        const sessions = await latchkey.listSessions(signedin.session.userId);
        return sessionsPage(site.viewerOf(signedin), sessions, {
          currentId: signedin.session.id,
          now: site.clock(),
        });
      }),
    },
    '/password': {
      GET: site.page((signedin) =>
        passwordPage(site.viewerOf(signedin), {
          recentLogin: latchkey.isRecentLogin(signedin.session),
        }),
      ),
    },
    '/assets/style.css': {
      GET: async () => ({ status: 200, type: 'css', body: STYLESHEET, cacheable: true }),
    },
  };
  if (site.allowSignup) {
    routes['/signup'] = {
      GET: async (ctx) => {
        const token = site.preLoginToken(ctx);
        const page = signupPage({ csrf: token.csrf, next: site.returnTarget(nextOf(ctx)) });
        return htmlReply(200, page, { setCookie: token.setCookie });
      },
    };
  }
  return routes;
}
