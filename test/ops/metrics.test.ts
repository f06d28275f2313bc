import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, type ServeProcess, tempDir, useServe } from '../helpers/cli.js';
import { apiLogin, cookieOf, jsonLines, PASSWORD, sample, waitFor } from './support.js';

const temp = tempDir();
beforeAll(() => addUser(temp.db, 'ada', PASSWORD));
afterAll(() => temp.remove());

const startServe = useServe();

async function serve(args: readonly string[]): Promise<ServeProcess> {
  return startServe(['--db', temp.db, ...args]);
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

describe('GET /metrics (Prometheus text)', () => {
  it('counts a scripted session: 2 logins, 1 failure, 10 validations, 1 logout', async () => {
    const { url } = await serve(['--metrics']);
    const first = cookieOf(await apiLogin(url, 'ada'));
    const second = cookieOf(await apiLogin(url, 'ada'));
    expect((await apiLogin(url, 'ada', 'not the password')).status).toBe(401);
    for (let i = 0; i < 10; i++) {
      expect((await fetch(`${url}/api/me`, { headers: { cookie: first } })).status).toBe(200);
    }
    const logout = await fetch(`${url}/api/logout`, {
      method: 'POST',
      headers: { cookie: second, origin: url },
    });
    expect(logout.status).toBe(204);

    const metrics = await scrape(`${url}/metrics`);
    expect(sample(metrics, 'latchkey_logins_total{result="success"}')).toBe(2);
    expect(sample(metrics, 'latchkey_logins_total{result="invalid"}')).toBe(1);
    expect(sample(metrics, 'latchkey_logins_total{result="throttled"}')).toBe(0);
    expect(sample(metrics, 'latchkey_logins_total{result="error"}')).toBe(0);
    expect(sample(metrics, 'latchkey_validations_total{result="valid"}')).toBe(10);
    expect(sample(metrics, 'latchkey_validations_total{result="store_error"}')).toBe(0);
    expect(sample(metrics, 'latchkey_validation_duration_seconds_count')).toBe(10);
    expect(sample(metrics, 'latchkey_store_errors_total')).toBe(0);
    expect(sample(metrics, 'latchkey_sessions_created_total')).toBe(2);
    expect(sample(metrics, 'latchkey_sessions_ended_total{reason="logout"}')).toBe(1);
    expect(sample(metrics, 'latchkey_active_sessions')).toBe(1);
    expect(metrics).toContain('# TYPE latchkey_validation_duration_seconds histogram');
    expect(metrics).toContain('latchkey_sweeps_total{result="done"}');
    expect(metrics).toContain('latchkey_swept_rows_total{kind="sessions"}');

    // The logged-out cookie is a "revoked" validation; no cookie is "missing".
    expect((await fetch(`${url}/api/me`, { headers: { cookie: second } })).status).toBe(401);
    expect((await fetch(`${url}/api/me`)).status).toBe(401);
    const after = await scrape(`${url}/metrics`);
    expect(sample(after, 'latchkey_validations_total{result="revoked"}')).toBe(1);
    expect(sample(after, 'latchkey_validations_total{result="missing"}')).toBe(1);
    // No token or cookie value in what a scrape shows.
    for (const cookie of [first, second]) expect(after).not.toContain(cookie.split('=')[1]);
  });

  it('is off by default, and on a separate listener with --metrics-port', async () => {
    const plain = await serve([]);
    expect((await fetch(`${plain.url}/metrics`)).status).toBe(404);

    const split = await serve(['--metrics-port', '0']);
    const metricsUrl = await waitFor(() => {
      const line = jsonLines(split.output()).find((entry) => entry.metrics);
      return typeof line?.metrics === 'string' ? line.metrics : undefined;
    }, 'the metrics address in the log');
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(metricsUrl).port).not.toBe(new URL(split.url).port);
    expect((await fetch(`${split.url}/metrics`)).status).toBe(404);
    cookieOf(await apiLogin(split.url, 'ada'));
    const metrics = await scrape(metricsUrl);
    expect(sample(metrics, 'latchkey_logins_total{result="success"}')).toBe(1);
    expect((await fetch(metricsUrl.replace('/metrics', '/dashboard'))).status).toBe(404);
  });
});
