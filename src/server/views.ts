import type { AuthMethod, JsonObject, SessionRecord } from '../index.js';
import { deviceName } from './device-name.js';
import { html, type SafeHtml } from './html.js';
import { isoTime } from './iso-time.js';
import { timeAgo } from './time-ago.js';

/** The signed-in user as pages show them (the session's snapshot). */
export interface PageUser {
  readonly id: string;
  readonly username: string;
}

/** Who a page is for, and the CSRF token its forms carry. */
export interface Viewer {
  readonly user: PageUser;
  readonly csrf: string;
}

export function userOf(snapshot: JsonObject, userId: string): PageUser {
  const username = typeof snapshot.username === 'string' ? snapshot.username : userId;
  return { id: userId, username };
}

/** The one place an HTML form is written: every form posts, and every one carries its CSRF token. */
export function form(options: {
  action: string;
  csrf: string;
  fields?: Readonly<Record<string, string>>;
  className?: string;
  body: SafeHtml;
}): SafeHtml {
  const fields = { ...options.fields, csrf: options.csrf };
  const hidden = Object.entries(fields).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`,
  );
  const className = options.className ? html` class="${options.className}"` : null;
  return html`<form method="post" action="${options.action}"${className}>${hidden}${options.body}</form>`;
}

export function layout(options: {
  title: string;
  viewer?: Viewer | null;
  main: SafeHtml;
  /** Loads the passkey script (pages with `data-passkey` buttons). */
  passkeys?: boolean;
}): string {
  const viewer = options.viewer;
  const nav = viewer
    ? html`<nav aria-label="Account">
        <a href="/dashboard">Dashboard</a>
        <a href="/profile">Profile</a>
        <a href="/sessions">Sessions</a>
        ${form({ action: '/logout', csrf: viewer.csrf, className: 'inline', body: html`<button type="submit" class="link">Log out</button>` })}
      </nav>`
    : null;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · latchkey</title>
<link rel="stylesheet" href="/assets/style.css">
${options.passkeys ? PASSKEY_SCRIPTS : null}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/">latchkey</a>${nav}</header>
<main id="main">
${options.main}
</main>
</body>
</html>
`.markup;
}

const PASSKEY_SCRIPTS = html`<script src="/assets/simplewebauthn-browser.js" defer></script>
<script src="/assets/passkeys.js" defer></script>`;

/** Where the passkey script says what went wrong (hidden until then). */
export function passkeyNotice(): SafeHtml {
  return html`<p class="error" role="alert" data-passkey-error hidden></p>`;
}

export function errorNotice(message: string | null): SafeHtml | null {
  return message ? html`<p class="error" role="alert" id="form-error">${message}</p>` : null;
}

export function loginPage(options: {
  csrf: string;
  username?: string;
  next?: string | null;
  error?: string | null;
  allowSignup: boolean;
  /** Offers "Sign in with a passkey". */
  passkeys?: boolean;
}): string {
  const fields: Record<string, string> = options.next ? { next: options.next } : {};
  const describedBy = options.error ? html` aria-describedby="form-error"` : null;
  // After a failure the username is kept, so the password is what to type next.
  const focusPassword = Boolean(options.error && options.username);
  const body = html`
    <label for="username">Username</label>
    <input id="username" name="username" type="text" autocomplete="username" required maxlength="256"
      value="${options.username ?? ''}"${describedBy}${focusPassword ? null : html` autofocus`}>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required
      maxlength="1024"${describedBy}${focusPassword ? html` autofocus` : null}>
    <label class="check"><input name="remember" type="checkbox"> Keep me signed in on this device for 30 days</label>
    <button type="submit">Log in</button>`;
  const signup = options.allowSignup
    ? html`<p>New here? <a href="${options.next ? `/signup?next=${encodeURIComponent(options.next)}` : '/signup'}">Create an account</a>.</p>`
    : null;
  // Shown by the script, and only where the browser has WebAuthn.
  const passkey = options.passkeys
    ? html`<section class="stack" aria-label="Passkey">
${passkeyNotice()}
<button type="button" data-passkey="login" data-next="${options.next ?? '/dashboard'}" hidden>Sign in with a passkey</button>
</section>`
    : null;
  return layout({
    title: 'Log in',
    passkeys: options.passkeys === true,
    main: html`<h1>Log in</h1>
${errorNotice(options.error ?? null)}
${form({ action: '/login', csrf: options.csrf, fields, className: 'stack', body })}
${passkey}
${signup}`,
  });
}

export function signupPage(options: {
  csrf: string;
  username?: string;
  next?: string | null;
  error?: string | null;
}): string {
  const fields: Record<string, string> = options.next ? { next: options.next } : {};
  const body = html`
    <label for="username">Username</label>
    <input id="username" name="username" type="text" autocomplete="username" required maxlength="64"
      value="${options.username ?? ''}" autofocus>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="new-password" required
      minlength="8" maxlength="1024" aria-describedby="password-hint">
    <p class="hint" id="password-hint">At least 8 characters, not a common password. A long passphrase is best.</p>
    <button type="submit">Create account</button>`;
  return layout({
    title: 'Sign up',
    main: html`<h1>Create an account</h1>
${errorNotice(options.error ?? null)}
${form({ action: '/signup', csrf: options.csrf, fields, className: 'stack', body })}
<p>Already have an account? <a href="/login">Log in</a>.</p>`,
  });
}

export function dashboardPage(viewer: Viewer, session: SessionRecord): string {
  return layout({
    title: 'Dashboard',
    viewer,
    main: html`<h1>Dashboard</h1>
<p class="lead">Signed in as <strong>${viewer.user.username}</strong>.</p>
<dl>
  <dt>Signed in</dt><dd>${time(session.authenticatedAt)}</dd>
  <dt>Ends after inactivity at</dt><dd>${time(session.idleExpiresAt)}</dd>
  <dt>Ends at the latest</dt><dd>${time(session.absoluteExpiresAt)}</dd>
</dl>
<p><a href="/sessions">See where you are signed in</a>.</p>`,
  });
}

export function profilePage(viewer: Viewer, session: SessionRecord): string {
  const { user, csrf } = viewer;
  return layout({
    title: 'Profile',
    viewer,
    main: html`<h1>Profile</h1>
<dl>
  <dt>Username</dt><dd>${user.username}</dd>
  <dt>User id</dt><dd><code>${user.id}</code></dd>
  <dt>Last password check</dt><dd>${time(session.authenticatedAt)}</dd>
</dl>
<p><a href="/password">Change your password</a></p>
<p><a href="/profile/two-factor">Two-factor authentication</a>: ${session.aal === 2 ? 'this session used a second factor.' : 'a second factor keeps your password alone from signing in.'}</p>
<h2>Sign out everywhere</h2>
<p>Ends every session and "keep me signed in" token of your account, this one included.</p>
${form({ action: '/logout-everywhere', csrf, body: html`<button type="submit" class="danger">Log out everywhere</button>` })}
<h2>Disable your account</h2>
<p>Nobody can sign in to a disabled account until an administrator enables it again.</p>
${form({ action: '/account/disable', csrf, className: 'stack', body: html`${currentPasswordField(false)}<button type="submit" class="danger">Disable my account</button>` })}`,
  });
}

/** Asks for the current password: required once the last password login is no longer recent. */
export function currentPasswordField(required: boolean): SafeHtml {
  return html`<label for="current_password">Current password${required ? null : ' (if asked)'}</label>
    <input id="current_password" name="current_password" type="password" autocomplete="current-password"
      maxlength="1024"${required ? html` required` : null}>`;
}

export function passwordPage(
  viewer: Viewer,
  options: { recentLogin: boolean; error?: string | null },
): string {
  const body = html`
    ${currentPasswordField(!options.recentLogin)}
    <label for="new_password">New password</label>
    <input id="new_password" name="new_password" type="password" autocomplete="new-password" required
      minlength="8" maxlength="1024" aria-describedby="password-hint">
    <p class="hint" id="password-hint">At least 8 characters, not a common password. A long passphrase is best.</p>
    <label class="check"><input name="sign_out_others" type="checkbox" checked> Sign out all other sessions</label>
    <button type="submit">Change password</button>`;
  return layout({
    title: 'Change password',
    viewer,
    main: html`<h1>Change password</h1>
${errorNotice(options.error ?? null)}
${form({ action: '/password', csrf: viewer.csrf, className: 'stack', body })}`,
  });
}

/**
 * The "confirm it's you" step of a sensitive action: the same form again, with the password
 * field, posting to the same action.
 */
export function confirmPage(
  viewer: Viewer,
  options: { action: string; fields: Readonly<Record<string, string>>; error?: string | null },
): string {
  return layout({
    title: 'Confirm your password',
    viewer,
    main: html`<h1>Confirm your password</h1>
<p>This change needs your password: your last sign-in with it was a while ago.</p>
${errorNotice(options.error ?? null)}
${form({
  action: options.action,
  csrf: viewer.csrf,
  fields: options.fields,
  className: 'stack',
  body: html`${currentPasswordField(true)}<button type="submit">Confirm</button>`,
})}`,
  });
}

export function sessionsPage(
  viewer: Viewer,
  sessions: readonly SessionRecord[],
  options: { currentId: string; now: number },
): string {
  const { csrf } = viewer;
  const { currentId, now } = options;
  const rows = sessions.map((session) => {
    const current = session.id === currentId;
    const device = deviceName(session.userAgent);
    const action = current
      ? form({
          action: '/logout',
          csrf,
          body: html`<button type="submit">Log out</button>`,
        })
      : form({
          action: '/sessions/revoke',
          csrf,
          fields: { id: session.id },
          body: html`<button type="submit" aria-label="Revoke session from ${device}">Revoke</button>`,
        });
    // The raw agent stays one hover away: the name is a guess, the agent is what was sent.
    const agent = session.userAgent === null ? null : html` title="${session.userAgent}"`;
    return html`<tr${current ? html` class="current"` : null}>
      <td><span${agent}>${device}</span>${current ? html` <strong class="badge">This device</strong>` : null}</td>
      <td>${session.ip ?? 'unknown'}</td>
      <td>Signed in ${ago(session.createdAt, now)}<br>Last active ${ago(session.lastSeenAt, now)}</td>
      <td>${assurance(session)}</td>
      <td>${action}</td>
    </tr>`;
  });
  const others = sessions.length > 1;
  return layout({
    title: 'Sessions',
    viewer,
    main: html`<h1>Your sessions</h1>
<p>${sessions.length === 1 ? 'You are signed in on 1 device.' : `You are signed in on ${sessions.length} devices.`}</p>
<div class="table-wrap">
<table>
  <thead><tr><th scope="col">Device</th><th scope="col">IP address</th><th scope="col">Activity</th><th scope="col">Sign-in</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
  <tbody>${rows}</tbody>
</table>
</div>
${others ? form({ action: '/sessions/revoke-others', csrf, body: html`<button type="submit" class="danger">Log out all other sessions</button>` }) : null}`,
  });
}

const METHODS: Readonly<Record<AuthMethod, string>> = {
  pwd: 'password',
  otp: 'one-time code',
  hwk: 'security key',
  swk: 'passkey',
  mfa: 'several factors',
};

/** A session's assurance level in words, with the methods behind it when the app recorded them. */
function assurance(session: SessionRecord): SafeHtml {
  // The level, not a method: a level-1 session may come from a passkey, not a password.
  const level = session.aal === 2 ? 'Two-factor' : 'Single factor';
  const methods = session.amr.map((method) => METHODS[method]).join(', ');
  return html`${level}${methods ? html`<br><span class="hint">${methods}</span>` : null}`;
}

/** "5 minutes ago", with the exact time for machines and on hover. */
function ago(ms: number, now: number): SafeHtml {
  const iso = isoTime(ms);
  return html`<time datetime="${iso}" title="${utc(iso)}">${timeAgo(ms, now)}</time>`;
}

export function messagePage(title: string, message: string, viewer: Viewer | null = null): string {
  return layout({ title, viewer, main: html`<h1>${title}</h1><p>${message}</p>` });
}

/**
 * A top-level navigation from another site arrives without the SameSite=Strict cookie. This page
 * re-navigates to `target` from our own origin, which then carries it. No script: a meta refresh.
 */
export function renavigatePage(target: string): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0; url=${target}">
<title>Continue · latchkey</title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<main id="main"><p><a href="${target}">Continue</a></p></main>
</body>
</html>
`.markup;
}

export function time(ms: number): SafeHtml {
  const iso = isoTime(ms);
  return html`<time datetime="${iso}">${utc(iso)}</time>`;
}

function utc(iso: string): string {
  return `${iso.slice(0, 19).replace('T', ' ')} UTC`;
}
