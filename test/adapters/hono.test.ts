import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { Latchkey, MemoryStore } from 'latchkey';
import {
  type Auth,
  type AuthVariables,
  authenticate,
  completeLogin,
  login,
  requireAuth,
} from 'latchkey/hono';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { start } from '../../examples/hono/app.js';
import { assuranceFlowTests, demoUser, type StartAssuranceApp, seedFlowTests } from './flow.js';

type Member = { id: string; username: string; plan: 'free' | 'pro' };

describe('latchkey/hono: the example app over real HTTP', () => {
  seedFlowTests(start);
});

const startAssurance: StartAssuranceApp = async (latchkey) => {
  const app = new Hono<{ Variables: AuthVariables<Member> }>();
  app.use(authenticate<Member>(latchkey));
  app.post('/login', async (c) => {
    const result = await login(c, await c.req.json());
    return result.ok ? c.json({ user: result.user }) : c.json({ error: result.error }, 401);
  });
  app.post('/login/second-factor', async (c) => {
    const { code } = await c.req.json();
    const result = await completeLogin(c, { type: 'totp', code });
    return result.ok ? c.json({ user: result.user }) : c.json({ error: result.error }, 401);
  });
  app.get('/api/me', requireAuth<Member>(), (c) => c.json({ aal: c.get('auth').session.aal }));
  app.get('/settings', requireAuth<Member>({ aal: 2 }), (c) =>
    c.text(`Settings of ${c.get('auth').user.username}`),
  );
  app.get('/api/settings', requireAuth<Member>({ aal: 2 }), (c) =>
    c.json({ aal: c.get('auth').session.aal }),
  );
  const server = createAdaptorServer({ fetch: app.fetch });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

describe('latchkey/hono: assurance levels over real HTTP', () => {
  assuranceFlowTests(startAssurance);
});

describe('latchkey/hono: in an app', () => {
  const store = new MemoryStore();
  const latchkey = new Latchkey({
    store,
    verifyCredentials: async (username, password) =>
      username === demoUser.username && password === demoUser.password
        ? { userId: 'u1', user: { id: 'u1', username, plan: 'pro' } }
        : null,
  });
  const app = new Hono<{ Variables: AuthVariables<Member> }>();
  app.use(authenticate<Member>(latchkey));
  app.post('/login', async (c) => {
    const result = await login(c, await c.req.json());
    return c.json({ ok: result.ok }, result.ok ? 200 : 401, {
      'x-plan': c.get('auth')?.user.plan ?? '',
    });
  });
  app.get('/public', (c) => {
    expectTypeOf(c.get('auth')).toEqualTypeOf<Auth<Member> | null>();
    return c.json({ signedIn: c.get('auth') !== null });
  });
  app.get('/plan', requireAuth<Member>(), (c) => {
    expectTypeOf(c.get('auth').user.plan).toEqualTypeOf<'free' | 'pro'>();
    return c.text(c.get('auth').user.plan);
  });

  it('the user snapshot type flows from the type parameter to c.get("auth")', async () => {
    const login = await app.request('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(demoUser),
    });
    expect(login.headers.get('x-plan')).toBe('pro');
    const cookie = (login.headers.getSetCookie()[0] as string).split(';')[0] as string;
    expect(await (await app.request('/plan', { headers: { cookie } })).text()).toBe('pro');
    expect(await (await app.request('/public')).json()).toEqual({ signedIn: false });
  });

  it('a guard without the middleware is a server error, never an open door', async () => {
    const bare = new Hono();
    bare.get('/secret', requireAuth(), (c) => c.text('secret'));
    const response = await bare.request('/secret');
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain('secret');
  });
});
