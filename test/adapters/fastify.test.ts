import Fastify, { type FastifyInstance } from 'fastify';
import { Latchkey, type LoginResult, MemoryStore } from 'latchkey';
import { type Auth, latchkeyPlugin, requireAuth } from 'latchkey/fastify';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { start } from '../../examples/fastify/app.js';
import { assuranceFlowTests, demoUser, type StartAssuranceApp, seedFlowTests } from './flow.js';

describe('latchkey/fastify: the example app over real HTTP', () => {
  seedFlowTests(start);
});

const startAssurance: StartAssuranceApp = async (latchkey) => {
  const app = Fastify();
  await app.register(latchkeyPlugin, { latchkey });
  app.post<{ Body: Record<string, unknown> }>('/login', async (request, reply) => {
    const result = await reply.login(request.body);
    return result.ok ? { user: result.user } : reply.code(401).send({ error: result.error });
  });
  app.post<{ Body: { code?: unknown } }>('/login/second-factor', async (request, reply) => {
    const result = await reply.completeLogin({ type: 'totp', code: request.body.code });
    return result.ok ? { user: result.user } : reply.code(401).send({ error: result.error });
  });
  app.get('/api/me', { preHandler: requireAuth }, (request) => ({
    aal: request.auth?.session.aal,
  }));
  app.get('/settings', { preHandler: requireAuth({ aal: 2 }) }, async (request, reply) =>
    reply.type('text/plain').send(`Settings of ${request.auth?.user.username}`),
  );
  app.get('/api/settings', { preHandler: requireAuth({ aal: 2 }) }, (request) => ({
    aal: request.auth?.session.aal,
  }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
};

describe('latchkey/fastify: assurance levels over real HTTP', () => {
  assuranceFlowTests(startAssurance);
});

describe('latchkey/fastify: encapsulation', () => {
  const store = new MemoryStore();
  const latchkey = new Latchkey({ store, users: store });
  let app: FastifyInstance;
  const seen: { scoped: boolean; root: boolean } = { scoped: false, root: false };

  beforeAll(async () => {
    await latchkey.createUser(demoUser.username, demoUser.password);
    app = Fastify();
    await app.register(async (scoped) => {
      await scoped.register(latchkeyPlugin, { latchkey });
      seen.scoped = scoped.hasRequestDecorator('auth') && scoped.hasReplyDecorator('login');
      scoped.post<{ Body: Record<string, unknown> }>('/login', async (request, reply) => {
        const result = await reply.login(request.body);
        expectTypeOf(result).toEqualTypeOf<LoginResult>();
        return result.ok ? { user: request.auth?.user } : reply.code(401).send({});
      });
      scoped.get('/inside', { preHandler: requireAuth }, (request) => {
        expectTypeOf(request.auth).toEqualTypeOf<Auth<{ id: string; username: string }> | null>();
        return { who: request.auth?.user.username };
      });
    });
    app.get('/outside', async (request) => ({ auth: request.auth === undefined }));
    app.get('/guarded-outside', { preHandler: requireAuth }, async () => 'secret');
    await app.ready();
    seen.root = app.hasRequestDecorator('auth');
  });
  afterAll(() => app.close());

  it('decorators reach the routes beside the registration, not the parent scope', () => {
    expect(seen).toEqual({ scoped: true, root: false });
  });

  it('authenticates inside its scope only', async () => {
    const login = await app.inject({ method: 'POST', url: '/login', payload: demoUser });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0] as string;
    const inside = await app.inject({ url: '/inside', headers: { cookie } });
    expect(inside.json()).toEqual({ who: 'ada' });
    const outside = await app.inject({ url: '/outside', headers: { cookie } });
    expect(outside.json()).toEqual({ auth: true });
  });

  it('a guard outside the plugin scope is a server error, never an open door', async () => {
    const response = await app.inject({ url: '/guarded-outside' });
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('secret');
  });
});
