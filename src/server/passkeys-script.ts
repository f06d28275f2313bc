import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * `@simplewebauthn/browser`'s own bundle (it defines `SimpleWebAuthnBrowser`), read once from
 * node_modules: served as it ships, so its version is the server's.
 */
export function webauthnLibrary(): string {
  library ??= readFileSync(
    join(
      dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')),
      '../dist/bundle/index.umd.min.js',
    ),
    'utf8',
  );
  return library;
}
let library: string | undefined;

/**
 * The pages' one script (served at /assets/passkeys.js, never inline: the CSP allows scripts
 * from this origin only). Buttons say what they do in `data-passkey`; messages go to the
 * `[data-passkey-error]` element of their form; nothing is logged.
 */
export const PASSKEY_SCRIPT = `'use strict';
(() => {
  const lib = globalThis.SimpleWebAuthnBrowser;
  async function post(path, body) {
    const response = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
    let value = {};
    try { value = await response.json(); } catch {}
    return { status: response.status, value };
  }
  function say(button, message) {
    const box = button.closest('[data-passkey-form], section, main').querySelector('[data-passkey-error]');
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }
  // Not a <form>: Enter in a field must not submit the password anywhere.
  function fieldOf(button, name) {
    const scope = button.closest('[data-passkey-form]');
    const field = scope ? scope.querySelector('[name="' + name + '"]') : null;
    return field ? field.value : undefined;
  }
  function problem(answer) {
    const error = answer.value && answer.value.error;
    if (answer.status === 429) return 'Too many attempts. Wait a little and try again.';
    if (error === 'reauthentication_required') return 'Enter your current password first.';
    return 'That did not work. Try again.';
  }
  const next = (button) => button.dataset.next || '/dashboard';
  const flows = {
    async register(button) {
      const started = await post('/api/passkeys/register/options', {
        currentPassword: fieldOf(button, 'current_password') || undefined,
      });
      if (started.status === 401 && started.value.error === 'second_factor_required') {
        location.assign('/login/second-factor?next=%2Fprofile%2Ftwo-factor');
        return;
      }
      if (started.status !== 200) return say(button, problem(started));
      const response = await lib.startRegistration({ optionsJSON: started.value.options });
      const done = await post('/api/passkeys/register', {
        response,
        name: fieldOf(button, 'name') || undefined,
      });
      if (done.status !== 201) return say(button, problem(done));
      const codes = done.value.recoveryCodes || [];
      const list = document.querySelector('[data-passkey-codes]');
      if (codes.length === 0 || !list) return location.assign('/profile/two-factor');
      const items = list.querySelector('ol');
      for (const code of codes) {
        const item = document.createElement('li');
        const text = document.createElement('code');
        text.textContent = code;
        item.append(text);
        items.append(item);
      }
      list.hidden = false;
    },
    async login(button) {
      const started = await post('/api/login/passkey/options');
      if (started.status !== 200) return say(button, problem(started));
      const response = await lib.startAuthentication({ optionsJSON: started.value.options });
      const done = await post('/api/login/passkey', { response });
      if (done.status !== 200) return say(button, problem(done));
      location.assign(next(button));
    },
    async 'second-factor'(button) {
      const started = await post('/api/login/second-factor/passkey/options');
      if (started.status !== 200) return say(button, problem(started));
      const response = await lib.startAuthentication({ optionsJSON: started.value.options });
      const done = await post('/api/login/second-factor', { type: 'passkey', response });
      if (done.status !== 200) return say(button, problem(done));
      location.assign(next(button));
    },
  };
  for (const button of document.querySelectorAll('button[data-passkey]')) {
    const flow = flows[button.dataset.passkey];
    if (!flow || !lib || !lib.browserSupportsWebAuthn()) continue;
    button.hidden = false;
    button.addEventListener('click', async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        await flow(button);
      } catch {
        say(button, 'The passkey was not used. Try again.');
      } finally {
        button.disabled = false;
      }
    });
  }
})();
`;
