import type { AddressInfo } from 'node:net';
import express from 'express';
import { Latchkey, MemoryStore } from 'latchkey';
import {
  type Auth,
  authenticate,
  completeLogin,
  login as logIn,
  requireAuth,
} from 'latchkey/express';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { start } from '../../examples/express/app.js';
import { assuranceFlowTests, get, login, type StartAssuranceApp, seedFlowTests } from './flow.js';

describe('latchkey/express: the example app over real HTTP', () => {
  seedFlowTests(start);
});

const startAssurance: StartAssuranceApp = async (latchkey) => {
  const app = express();
  app.use(express.json());
  app.use(authenticate(latchkey));
  app.post('/login', async (req, res) => {
    const result = await logIn(req, res, req.body);
    if (result.ok) res.json({ user: result.user });
    else res.status(401).json({ error: result.error });
  });
  app.post('/login/second-factor', async (req, res) => {
    const result = await completeLogin(req, res, { type: 'totp', code: req.body.code });
    if (result.ok) res.json({ user: result.user });
    else res.status(401).json({ error: result.error });
  });
  app.get('/api/me', requireAuth(), (req, res) => {
    res.json({ aal: req.auth?.session.aal });
  });
  app.get('/settings', requireAuth({ aal: 2 }), (req, res) => {
    res.type('text').send(`Settings of ${req.auth?.user.username}`);
  });
  app.get('/api/settings', requireAuth({ aal: 2 }), (req, res) => {
    res.json({ aal: req.auth?.session.aal });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
};

describe('latchkey/express: assurance levels over real HTTP', () => {
  assuranceFlowTests(startAssurance);

  it('requireAuth refuses a level it does not know at mount time', () => {
    expect(() => requireAuth({ aal: 3 as 2 })).toThrow(/aal: must be 1 or 2/);
  });
});

describe('latchkey/express: mounting', () => {
  const store = new MemoryStore();
  const latchkey = new Latchkey({ store, users: store });
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    await latchkey.createUser('ada', 'correct horse battery staple');
    const app = express();
    app.set('trust proxy', 'loopback');
    app.use(express.json());
    app.use(authenticate(latchkey));
    app.post('/login', async (req, res) => {
      const result = await logIn(req, res, req.body);
      res.status(result.ok ? 200 : 401).json(result.ok ? { user: result.user } : {});
    });
    const admin = express.Router();
    admin.get('/users', requireAuth(), (req, res) => {
      expectTypeOf(req.auth).toEqualTypeOf<Auth<{ id: string; username: string }> | null>();
      res.json({ ip: req.ip, who: req.auth?.user.username });
    });
    app.use('/admin', admin);
    app.get('/public', (req, res) => {
      res.json({ signedIn: req.auth !== null });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise((resolve) => server.close(() => resolve()));
  });
  afterAll(() => close());

  it('a router guard sends pages back to the full path they asked for', async () => {
    const response = await get(url, '/admin/users?tab=2', null, { accept: 'text/html' });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/login?next=%2Fadmin%2Fusers%3Ftab%3D2');
  });

  it('public routes see req.auth without being guarded', async () => {
    const anonymous = await get(url, '/public', null, { accept: 'application/json' });
    expect(await anonymous.json()).toEqual({ signedIn: false });
    const cookie = await login(url);
    const signedIn = await get(url, '/public', cookie, { accept: 'application/json' });
    expect(await signedIn.json()).toEqual({ signedIn: true });
    const admin = await get(url, '/admin/users', cookie, { accept: 'application/json' });
    expect(await admin.json()).toEqual({ ip: '127.0.0.1', who: 'ada' });
  });

  it('behind a trusted proxy, the session records the client address (req.ip)', async () => {
    const response = await fetch(`${url}/login`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin: url,
        'x-forwarded-for': '203.0.113.7',
      },
      body: JSON.stringify({ username: 'ada', password: 'correct horse battery staple' }),
    });
    const { user } = (await response.json()) as { user: { id: string } };
    const sessions = await latchkey.listSessions(user.id);
    expect(sessions.map((session) => session.ip)).toContain('203.0.113.7');
  });

  it('a guard without the middleware is a server error, never an open door', async () => {
    const app = express();
    app.get('/secret', requireAuth(), (_req, res) => {
      res.send('secret');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const port = (server.address() as AddressInfo).port;
    const response = await fetch(`http://127.0.0.1:${port}/secret`);
    server.close();
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain('secret');
  });
});
