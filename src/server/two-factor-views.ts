import type { SecondFactorMethod, SecondFactorStatus, TotpEnrolment } from '../index.js';
import { html, raw, type SafeHtml } from './html.js';
import {
  currentPasswordField,
  errorNotice,
  form,
  layout,
  passkeyNotice,
  time,
  type Viewer,
} from './views.js';

/**
 * The second step of a login (a pending login) or a step-up (a signed-in session): one code
 * field, for the authenticator app's code or a recovery code.
 */
export function secondFactorPage(options: {
  csrf: string;
  viewer: Viewer | null;
  methods: readonly SecondFactorMethod[];
  next: string | null;
  recovery: boolean;
  error?: string | null;
}): string {
  const fields: Record<string, string> = options.next ? { next: options.next } : {};
  const recovery = options.recovery || !options.methods.includes('totp');
  const describedBy = options.error ? html` aria-describedby="form-error"` : null;
  const codeField = recovery
    ? html`<label for="code">Recovery code</label>
    <input id="code" name="code" type="text" autocomplete="off" autocapitalize="none" spellcheck="false"
      required maxlength="64" autofocus${describedBy}>
    <input type="hidden" name="kind" value="recovery">`
    : html`<label for="code">Code from your authenticator app</label>
    <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
      pattern="[0-9 ]{6,7}" required maxlength="7" autofocus${describedBy}>
    <input type="hidden" name="kind" value="totp">`;
  const query = options.next ? `&next=${encodeURIComponent(options.next)}` : '';
  const other =
    recovery && options.methods.includes('totp')
      ? html`<p><a href="/login/second-factor?${query.slice(1)}">Use your authenticator app instead</a>.</p>`
      : !recovery && options.methods.includes('recovery')
        ? html`<p>Lost your device? <a href="/login/second-factor?recovery=1${query}">Use a recovery code</a>.</p>`
        : null;
  const passkey = options.methods.includes('passkey')
    ? html`<section class="stack" aria-label="Passkey">
${passkeyNotice()}
<button type="button" data-passkey="second-factor" data-next="${options.next ?? '/dashboard'}" hidden>Use a passkey</button>
</section>`
    : null;
  return layout({
    title: 'Two-factor authentication',
    viewer: options.viewer,
    passkeys: passkey !== null,
    main: html`<h1>Confirm it is you</h1>
<p>${options.viewer ? 'This page needs your second factor.' : 'Your password is right. Now your second factor.'}</p>
${errorNotice(options.error ?? null)}
${form({
  action: '/login/second-factor',
  csrf: options.csrf,
  fields,
  className: 'stack',
  body: html`${codeField}<button type="submit">Continue</button>`,
})}
${passkey}
${other}`,
  });
}

/** The profile's "Two-factor authentication" section. */
export function twoFactorPage(
  viewer: Viewer,
  status: SecondFactorStatus,
  options: { notice?: string; passkeys: boolean },
): string {
  const { csrf } = viewer;
  const { notice } = options;
  const totp = status.totp
    ? html`<p>Authenticator app: <strong>on</strong>, added ${time(status.totp.createdAt)}${
        status.totp.lastUsedAt === null ? null : html`, last used ${time(status.totp.lastUsedAt)}`
      }.</p>
${form({
  action: '/profile/two-factor/remove',
  csrf,
  fields: { id: status.totp.id },
  className: 'stack',
  body: html`${currentPasswordField(false)}<button type="submit" class="danger">Remove authenticator app</button>`,
})}`
    : html`<p>Authenticator app: <strong>off</strong>.</p>
${form({
  action: '/profile/two-factor/totp',
  csrf,
  className: 'stack',
  body: html`${currentPasswordField(false)}<button type="submit">Set up an authenticator app</button>`,
})}`;
  const recovery = status.enabled
    ? html`<h2>Recovery codes</h2>
<p>${status.recoveryCodesLeft === 1 ? '1 recovery code left.' : `${status.recoveryCodesLeft} recovery codes left.`} Each works once, if you lose your device.</p>
${form({
  action: '/profile/two-factor/recovery-codes',
  csrf,
  className: 'stack',
  body: html`${currentPasswordField(false)}<button type="submit">Make new recovery codes</button>`,
})}`
    : null;
  return layout({
    title: 'Two-factor authentication',
    viewer,
    passkeys: options.passkeys,
    main: html`<h1>Two-factor authentication</h1>
${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
<p>With a second factor, your password alone cannot sign in to your account.</p>
${totp}
${options.passkeys ? passkeySection(viewer, status) : null}
${recovery}`,
  });
}

/** The profile's passkeys: each with rename and remove forms, and a button that adds one. */
function passkeySection(viewer: Viewer, status: SecondFactorStatus): SafeHtml {
  const { csrf } = viewer;
  const rows = status.passkeys.map(
    (passkey) => html`<li data-passkey-id="${passkey.id}">
<p><strong>${passkey.name}</strong>, added ${time(passkey.createdAt)}${
      passkey.lastUsedAt === null ? null : html`, last used ${time(passkey.lastUsedAt)}`
    }.</p>
${form({
  action: '/profile/two-factor/rename',
  csrf,
  fields: { id: passkey.id },
  className: 'stack',
  body: html`<label for="name-${passkey.id}">New name</label>
    <input id="name-${passkey.id}" name="name" type="text" required maxlength="64" value="${passkey.name}">
    <button type="submit">Rename</button>`,
})}
${form({
  action: '/profile/two-factor/remove',
  csrf,
  fields: { id: passkey.id },
  className: 'stack',
  body: html`${currentPasswordField(false)}<button type="submit" class="danger">Remove ${passkey.name}</button>`,
})}
</li>`,
  );
  return html`<h2>Passkeys</h2>
${rows.length > 0 ? html`<ul class="passkeys">${rows}</ul>` : html`<p>No passkeys yet.</p>`}
<div class="stack" data-passkey-form>
${passkeyNotice()}
<label for="passkey-name">Name of the new passkey</label>
<input id="passkey-name" name="name" type="text" maxlength="64" placeholder="This laptop">
${currentPasswordField(false)}
<button type="button" data-passkey="register" hidden>Add a passkey</button>
</div>
<section data-passkey-codes hidden>
<h3>Your recovery codes</h3>
<p>Keep these somewhere safe. Each signs you in once if you lose your passkeys. They are shown only now.</p>
<ol class="codes"></ol>
<p><a href="/profile/two-factor">Done</a></p>
</section>`;
}

/** A new authenticator: the QR code and the secret, and the first code that turns it on. */
export function enrolPage(viewer: Viewer, enrolment: TotpEnrolment, error?: string | null): string {
  const grouped = enrolment.secret.replace(/(.{4})/g, '$1 ').trim();
  return layout({
    title: 'Set up an authenticator app',
    viewer,
    main: html`<h1>Set up an authenticator app</h1>
<p>Scan this code with your authenticator app, or type the key into it.</p>
<figure class="qr">${raw(enrolment.qrSvg)}<figcaption>Key: <code>${grouped}</code></figcaption></figure>
${errorNotice(error ?? null)}
${form({
  action: '/profile/two-factor/totp/confirm',
  csrf: viewer.csrf,
  fields: { id: enrolment.factorId },
  className: 'stack',
  body: html`<label for="code">Code from the app</label>
    <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
      pattern="[0-9 ]{6,7}" required maxlength="7" autofocus>
    <button type="submit">Turn on</button>`,
})}`,
  });
}

/** Recovery codes, shown once. */
export function recoveryCodesPage(viewer: Viewer, codes: readonly string[]): string {
  const items: SafeHtml[] = codes.map((code) => html`<li><code>${code}</code></li>`);
  return layout({
    title: 'Recovery codes',
    viewer,
    main: html`<h1>Your recovery codes</h1>
<p>Keep these somewhere safe. Each signs you in once if you lose your device. They are shown only now.</p>
<ol class="codes">${items}</ol>
<p><a href="/profile/two-factor">Done</a></p>`,
  });
}
