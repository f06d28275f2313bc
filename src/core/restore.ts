import { callStore } from './errors.js';
import type { LoginParts } from './login.js';
import { confirmed } from './password-check.js';
import type { SessionRecord } from './store.js';

/**
 * A new session from the request's remember-me cookie (rotating the token), or none, with the
 * cookies to set. A replayed rotated token is theft: the user is logged out everywhere.
 */
export async function restoreSession(
  parts: LoginParts,
  cookieHeader: string | null,
  client: { readonly ip?: string | null; readonly userAgent?: string | null },
): Promise<{ session: SessionRecord | null; setCookie: readonly string[] }> {
  const { remember, sessions, sessionCookie, passwords, signOut, emit } = parts;
  if (!remember) return NOTHING_RESTORED;
  const read = remember.cookie.read(cookieHeader);
  if (read.value === null) {
    return read.reason === 'malformed'
      ? { session: null, setCookie: [remember.cookie.blank()] }
      : NOTHING_RESTORED;
  }
  const value = read.value;
  const check = await callStore(() => remember.use(value));
  if (check.status === 'theft') {
    await signOut.afterTheft(check.userId);
    emit({ type: 'theft_detected', userId: check.userId });
  }
  if (check.status !== 'valid') return { session: null, setCookie: [remember.cookie.blank()] };
  const { userId } = check.record;
  const user = await passwords.rememberedUser(userId);
  if (!user) {
    await signOut.forgetRemembered(userId);
    return { session: null, setCookie: [remember.cookie.blank()] };
  }
  const { session, token } = await sessions.create(userId, {
    user,
    ip: client.ip ?? null,
    userAgent: client.userAgent ?? null,
    // The password login that started the token chain: a remembered login is never "recent".
    authenticatedAt: check.record.createdAt,
  });
  // Written first, checked second: a sign-out forgets tokens before it ends sessions, so one
  // that ran meanwhile is seen here (or ends this session); so is a disabled or deleted user.
  const kept = async () =>
    (await callStore(() => remember.kept(check.record))) &&
    (await passwords.rememberedUser(userId)) !== null;
  if (!(await confirmed(kept, () => sessions.revoke(session.id)))) {
    return { session: null, setCookie: [remember.cookie.blank()] };
  }
  emit({ type: 'login_succeeded', session, via: 'remember' });
  return { session, setCookie: [sessionCookie.serialize(token), check.setCookie] };
}

const NOTHING_RESTORED = Object.freeze({ session: null, setCookie: Object.freeze([]) });
