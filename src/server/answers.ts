import {
  type LoginResult,
  OverloadedError,
  RETRY_AFTER_SECONDS,
  StoreUnavailableError,
} from '../index.js';
import { htmlReply, jsonReply, type Reply } from './http.js';
import { isApi } from './request.js';
import { messagePage, type Viewer } from './views.js';

// The server's stock answers: the same for every route, as a page or as JSON by path.

/**
 * Ends the browser's cached pages and stored data at sign-out. Not `"cookies"`: that would also
 * wipe the device cookie, which must outlive logout so its owner is never locked out by
 * strangers' guesses (see `throttle.deviceSecret`); the session cookies are cleared by Set-Cookie.
 */
export const CLEAR_SITE_DATA = { 'clear-site-data': '"cache", "storage"' };

/** `Retry-After` while the store is down. */
export function retryAfter(): Record<string, string> {
  return retryAfterIn(RETRY_AFTER_SECONDS);
}

export function retryAfterIn(seconds: number): Record<string, string> {
  return { 'retry-after': String(seconds) };
}

export function tooMany(seconds: number): string {
  return `Too many attempts. Try again in ${seconds} second${seconds === 1 ? '' : 's'}.`;
}

/** A failed login's status, and what the login page says about it. */
export function loginFailure(
  result: Exclude<LoginResult, { ok: true } | { error: 'second_factor_required' }>,
): {
  status: number;
  message: string;
} {
  if (result.error === 'too_many_attempts') {
    return { status: 429, message: tooMany(result.retryAfterSeconds) };
  }
  if (result.error === 'invalid_request') {
    return { status: 400, message: 'Enter your username and password.' };
  }
  return { status: 401, message: 'Incorrect username or password.' };
}

export function retryAfterOf(result: Exclude<LoginResult, { ok: true }>): Record<string, string> {
  return result.error === 'too_many_attempts' ? retryAfterIn(result.retryAfterSeconds) : {};
}

export function throttledJson(seconds: number): Reply {
  return jsonReply(429, { error: 'too_many_attempts' }, { headers: retryAfterIn(seconds) });
}

export function formFailure(status: 400 | 413 | 415): Reply {
  const messages = {
    400: 'The form could not be read.',
    413: 'The form is too large.',
    415: 'Send the form as application/x-www-form-urlencoded.',
  };
  return htmlReply(status, messagePage('Bad request', messages[status]));
}

export function csrfFailure(viewer: Viewer, setCookie: readonly string[]): Reply {
  const page = messagePage(
    'Form expired',
    'This form is no longer valid. Go back, reload the page and try again.',
    viewer,
  );
  return htmlReply(403, page, { setCookie });
}

export function crossOrigin(path: string): Reply {
  if (isApi(path)) return jsonReply(403, { error: 'cross_origin_request' });
  return htmlReply(403, messagePage('Forbidden', 'This request came from another site.'));
}

export function notFound(path: string): Reply {
  if (isApi(path)) return jsonReply(404, { error: 'not_found' });
  return htmlReply(404, messagePage('Not found', 'There is no page at this address.'));
}

export function notAllowed(path: string, allow: string): Reply {
  const headers = { allow };
  if (isApi(path)) return jsonReply(405, { error: 'method_not_allowed' }, { headers });
  return htmlReply(405, messagePage('Method not allowed', 'This page does not accept that.'), {
    headers,
  });
}

/**
 * A store outage, or more password work queued than the server takes (a sign-up flood), is a
 * 503 to retry; anything else a 500 that reveals nothing.
 */
export function failure(path: string, error: unknown, onError?: (error: unknown) => void): Reply {
  if (error instanceof OverloadedError) {
    const headers = retryAfterIn(error.retryAfterSeconds);
    if (isApi(path)) return jsonReply(503, { error: 'overloaded' }, { headers });
    const page = messagePage('Busy', 'The server is busy. Please retry in a moment.');
    return htmlReply(503, page, { headers });
  }
  if (error instanceof StoreUnavailableError) {
    const headers = retryAfter();
    if (isApi(path)) return jsonReply(503, { error: 'unavailable' }, { headers });
    const page = messagePage(
      'Unavailable',
      'Sign-in is temporarily unavailable. Please retry shortly.',
    );
    return htmlReply(503, page, { headers });
  }
  if (onError) onError(error);
  else {
    process.stderr.write(
      `latchkey: request failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
  }
  if (isApi(path)) return jsonReply(500, { error: 'internal_error' });
  return htmlReply(500, messagePage('Something went wrong', 'Please try again.'));
}
