/**
 * Issue 12, abuse items 3-5 and 11: targeted lockout (device cookies), sign-up throttling and the
 * bounded hashing queue, IPv6 buckets, and password strength, against a running server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  csrfFrom,
  freshIp,
  newAccount,
  type SecurityServer,
  startServer,
  strongPassword,
  uniqueName,
} from './support.js';

const DEVICE = '__Host-device';
let server: SecurityServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.stop());

describe('abuse', () => {
  it("12.3: an attacker's failures from other IPs do not stop the owner's device from logging in with the right password, after the owner logged out", async () => {
    const { username, password } = await newAccount(server);
    const owner = server.browser();
    await owner.login(username, password);
    expect(owner.jar.get(DEVICE)).toBeTruthy();
    const logout = await owner.postForm('/logout', { csrf: await owner.csrf() });
    expect(logout.status).toBe(303);
    // The browser honours Clear-Site-Data: only without "cookies" does the device cookie survive.
    expect(owner.session).toBeUndefined();
    expect(owner.jar.get(DEVICE)).toBeTruthy();
    for (let i = 0; i < 12; i++) {
      await server.browser(freshIp()).loginApi(username, `wrong-${i}-password`);
    }
    expect((await server.browser(freshIp()).loginApi(username, password)).status).toBe(429);
    const back = await owner.loginForm(username, password);
    expect(back.status, back.body).toBe(303);
    expect(owner.session).toBeTruthy();
  }, 60_000);

  it('12.4: sign-up is throttled per IP: after 20 back to back, 429 with Retry-After, and nothing is created', async () => {
    const browser = server.browser(freshIp());
    for (let i = 0; i < 20; i++) {
      const res = await browser.postJson('/api/signup', {
        username: uniqueName('many'),
        password: strongPassword(),
      });
      expect(res.status, res.body).toBe(201);
    }
    const name = uniqueName('over');
    const refused = await browser.postJson('/api/signup', {
      username: name,
      password: strongPassword(),
    });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.json()).toEqual({ error: 'too_many_attempts' });
    expect((await server.browser(freshIp()).loginApi(name, 'any-password-x')).status).toBe(401);
  }, 60_000);

  it('12.4: a sign-up flood fills the bounded hashing queue: 503 with Retry-After at once, and a login still gets through', async () => {
    const { username, password } = await newAccount(server);
    const flood = Array.from({ length: 120 }, () =>
      server.browser(freshIp()).postJson('/api/signup', {
        username: uniqueName('flood'),
        password: strongPassword(),
      }),
    );
    const login = server.browser(freshIp()).loginApi(username, password);
    const answers = await Promise.all(flood);
    expect((await login).status).toBe(200);
    const busy = answers.filter((res) => res.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    for (const res of busy) {
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.json()).toEqual({ error: 'overloaded' });
    }
    expect(answers.every((res) => res.status === 201 || res.status === 503)).toBe(true);
  }, 60_000);

  it('12.5: per-IP limits bucket IPv6 by /64: rotating addresses inside one /64 are one client', async () => {
    const prefix = '2001:db8:77:1';
    const results = await Promise.all(
      Array.from({ length: 140 }, (_, i) =>
        server
          .browser(`${prefix}:${(i + 1).toString(16)}::1`)
          .loginApi(uniqueName(), 'Spring2024!x'),
      ),
    );
    expect(results.filter((res) => res.status === 429).length).toBeGreaterThan(0);
    // The next /64 is someone else.
    expect(
      (await server.browser('2001:db8:77:2::1').loginApi(uniqueName(), 'whatever-pass')).status,
    ).toBe(401);
  }, 60_000);

  it('12.11: password1234, <username>2024! and latchkey123 are refused at sign-up and password change, with the estimator feedback on the page', async () => {
    const username = uniqueName('weak');
    for (const weak of ['password1234', `${username}2024!`, 'latchkey123']) {
      const api = await server.browser().postJson('/api/signup', { username, password: weak });
      expect(api.status, weak).toBe(400);
      expect(api.json()).toMatchObject({ error: 'weak_password' });
      const browser = server.browser();
      const form = await browser.page('/signup');
      const page = await browser.postForm('/signup', {
        username,
        password: weak,
        csrf: csrfFrom(form.body, '/signup'),
      });
      expect(page.status, weak).toBe(400);
      expect(page.body).toMatch(/too easy to guess\. [A-Z]/);
    }
    const { username: name, password } = await newAccount(server);
    const browser = server.browser();
    await browser.login(name, password);
    const change = await browser.postJson('/api/password', {
      currentPassword: password,
      newPassword: `${name}2024!`,
    });
    expect(change.status).toBe(400);
    expect(change.json()).toMatchObject({ error: 'weak_password' });
    const form = await browser.postForm('/password', {
      csrf: await browser.csrf('/password'),
      current_password: password,
      new_password: 'latchkey123',
    });
    expect(form.status).toBe(400);
    expect(form.body).toMatch(/too easy to guess\. [A-Z]/);
  }, 60_000);
});
