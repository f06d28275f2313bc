import { randomBytes } from 'node:crypto';
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import type { SecondFactorStore, ThrottleStore } from './capabilities.js';
import { HostCookie } from './cookies.js';
import { callStore } from './errors.js';
import type { EventListener } from './events.js';
import { checkPasskeyOptions, type PasskeyOptions } from './passkey-options.js';
import { type FactorSummary, newId } from './second-factors.js';
import type { PasskeyVerifier } from './second-step.js';
import type { SecretBox } from './secret-box.js';
import type { AuthMethod, FactorRecord } from './store.js';

/** A registration or login ceremony's options, and the cookie that holds its challenge. */
export interface Ceremony<T> {
  readonly options: T;
  readonly setCookie: string;
}

export type PasskeyRegistration =
  | { readonly ok: true; readonly factor: FactorSummary; readonly amr: readonly AuthMethod[] }
  | { readonly ok: false; readonly error: 'invalid_response' };

/** How long a ceremony may take, from its options to its answer. */
export const CHALLENGE_MS = 5 * 60_000;
const AAD = 'latchkey webauthn challenge';
const MAX_NAME = 64;
/** A challenge is answered once: the first answer counts its id, any later one is refused. */
const ONCE = { windowMs: CHALLENGE_MS, limit: 1, freeAttempts: 1, delays: [0] } as const;

type Purpose = 'register' | 'authenticate';

/** What the sealed cookie carries between a ceremony's options and its answer. */
interface Challenge {
  readonly id: string;
  readonly purpose: Purpose;
  /** The account the ceremony is for; null for a passwordless login (any account's passkey). */
  readonly userId: string | null;
  readonly challenge: string;
  readonly expiresAt: number;
}

/** What a passkey factor's `secret` holds (JSON); nothing in it is secret, only bound to a user. */
interface StoredPasskey {
  readonly credentialId: string;
  /** COSE public key, base64url. */
  readonly publicKey: string;
  readonly transports: readonly string[];
  readonly deviceType: 'singleDevice' | 'multiDevice';
}

/**
 * WebAuthn passkeys (with `@simplewebauthn/server`): registration, and assertions both as a
 * second factor and for passwordless logins. A ceremony's challenge lives in a sealed `__Host-`
 * cookie for 5 minutes (never in a URL, never logged) and is used once: its id is counted in the
 * throttle store with a limit of one, so a replayed answer is refused on every process.
 */
export class Passkeys implements PasskeyVerifier {
  readonly cookie: HostCookie;
  readonly rpId: string;
  private readonly origins: string[];
  private readonly rpName: string;

  constructor(
    private readonly store: SecondFactorStore,
    private readonly throttle: ThrottleStore,
    private readonly box: SecretBox,
    options: PasskeyOptions,
    defaultName: string,
    private readonly now: () => number,
    private readonly emit: EventListener,
    allowUnprefixed: boolean,
  ) {
    const checked = checkPasskeyOptions(options);
    this.rpId = checked.rpId;
    this.origins = checked.origins;
    this.rpName = options.rpName ?? defaultName;
    this.cookie = new HostCookie(
      allowUnprefixed ? 'latchkey-webauthn' : '__Host-latchkey-webauthn',
      { allowUnprefixed },
    );
  }

  /** Options for `navigator.credentials.create`: a discoverable passkey for `userId`. */
  async beginRegistration(
    userId: string,
    username: string,
  ): Promise<Ceremony<PublicKeyCredentialCreationOptionsJSON>> {
    const existing = await this.passkeysOf(userId);
    const options = await generateRegistrationOptions({
      rpName: this.rpName,
      rpID: this.rpId,
      userName: username,
      // The user handle: a passwordless login finds the account by it.
      userID: new TextEncoder().encode(userId),
      attestationType: 'none',
      excludeCredentials: existing.map(({ stored }) => ({
        id: stored.credentialId,
        transports: [...stored.transports],
      })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
    });
    return { options, setCookie: this.start('register', userId, options.challenge) };
  }

  /**
   * Checks the browser's answer to {@link beginRegistration} and stores the passkey as `name`.
   * The challenge is used up whatever the outcome.
   */
  async finishRegistration(
    userId: string,
    response: unknown,
    cookieHeader: string | null,
    name: unknown,
  ): Promise<PasskeyRegistration> {
    const refused = { ok: false, error: 'invalid_response' } as const;
    const challenge = await this.take(cookieHeader, 'register', userId);
    if (!challenge || !isCredential(response)) return refused;
    let info: Awaited<ReturnType<typeof verifyRegistrationResponse>>['registrationInfo'];
    try {
      const verified = await verifyRegistrationResponse({
        response: response as unknown as RegistrationResponseJSON,
        expectedChallenge: challenge.challenge,
        expectedOrigin: this.origins,
        expectedRPID: this.rpId,
        // A passkey that cannot verify its user can still be a second factor beside a password;
        // a passwordless login asks for verification every time (see `verify`).
        requireUserVerification: false,
      });
      info = verified.verified ? verified.registrationInfo : undefined;
    } catch {
      return refused;
    }
    if (!info) return refused;
    const { credential, credentialDeviceType } = info;
    const existing = await this.passkeysOf(userId);
    if (existing.some(({ stored }) => stored.credentialId === credential.id)) return refused;
    const stored: StoredPasskey = {
      credentialId: credential.id,
      publicKey: Buffer.from(credential.publicKey).toString('base64url'),
      transports: credential.transports ?? [],
      deviceType: credentialDeviceType,
    };
    const factor: FactorRecord = {
      id: newId(),
      userId,
      kind: 'passkey',
      name: cleanName(name) ?? `Passkey ${existing.length + 1}`,
      secret: JSON.stringify(stored),
      counter: credential.counter,
      confirmed: true,
      createdAt: this.now(),
      lastUsedAt: null,
    };
    await callStore(() => this.store.createFactor(factor));
    this.emit({ type: 'second_factor_added', userId, kind: 'passkey', factorId: factor.id });
    const { id, kind, createdAt, lastUsedAt } = factor;
    return {
      ok: true,
      factor: { id, kind, name: factor.name, createdAt, lastUsedAt },
      amr: [methodOf(credentialDeviceType)],
    };
  }

  /**
   * Options for `navigator.credentials.get`: `userId`'s passkeys as a second factor, or (null)
   * any discoverable passkey for a passwordless login, which must verify its user.
   */
  async beginAuthentication(
    userId: string | null,
  ): Promise<Ceremony<PublicKeyCredentialRequestOptionsJSON>> {
    const allow = userId === null ? [] : await this.passkeysOf(userId);
    const options = await generateAuthenticationOptions({
      rpID: this.rpId,
      allowCredentials: allow.map(({ stored }) => ({
        id: stored.credentialId,
        transports: [...stored.transports],
      })),
      userVerification: userId === null ? 'required' : 'preferred',
    });
    return { options, setCookie: this.start('authenticate', userId, options.challenge) };
  }

  /**
   * Checks an assertion against the request's challenge: for `userId`'s passkeys, or (null) for
   * the account the passkey names, with user verification. The challenge is used up whatever the
   * outcome. A signature counter must grow when the authenticator keeps one (synced passkeys
   * report 0); one that does not is refused, as a cloned authenticator's would be.
   */
  async verify(
    response: unknown,
    cookieHeader: string | null,
    userId: string | null,
  ): Promise<
    | { readonly ok: true; readonly userId: string; readonly amr: readonly AuthMethod[] }
    | { readonly ok: false }
  > {
    const refused = { ok: false } as const;
    const challenge = await this.take(cookieHeader, 'authenticate', userId);
    if (!challenge || !isCredential(response)) return refused;
    const passwordless = userId === null;
    const owner = userId ?? userOfHandle(response);
    if (owner === null) return refused;
    const found = (await this.passkeysOf(owner)).find(
      ({ stored }) => stored.credentialId === response.id,
    );
    if (!found) return refused;
    const { factor, stored } = found;
    let info: Awaited<ReturnType<typeof verifyAuthenticationResponse>>['authenticationInfo'];
    try {
      const verified = await verifyAuthenticationResponse({
        response: response as unknown as AuthenticationResponseJSON,
        expectedChallenge: challenge.challenge,
        expectedOrigin: this.origins,
        expectedRPID: this.rpId,
        credential: {
          id: stored.credentialId,
          publicKey: new Uint8Array(Buffer.from(stored.publicKey, 'base64url')),
          counter: factor.counter,
          transports: [...stored.transports],
        },
        requireUserVerification: passwordless,
      });
      if (!verified.verified) return refused;
      info = verified.authenticationInfo;
    } catch {
      // A bad signature, origin or flags, or a counter that did not grow: all one refusal.
      return refused;
    }
    if (passwordless && !info.userVerified) return refused;
    if (info.newCounter > 0 || factor.counter > 0) {
      // Atomic in the store: of two answers with one counter value, one wins.
      const advanced = await callStore(() =>
        this.store.advanceFactorCounter(owner, factor.id, info.newCounter, this.now()),
      );
      if (!advanced) return refused;
    }
    const method = methodOf(info.credentialDeviceType);
    return { ok: true, userId: owner, amr: passwordless ? [method, 'mfa'] : [method] };
  }

  /** The user's passkeys with what their `secret` holds (a record that does not parse is skipped). */
  private async passkeysOf(
    userId: string,
  ): Promise<{ factor: FactorRecord; stored: StoredPasskey }[]> {
    const factors = await callStore(() => this.store.listFactors(userId));
    return factors.flatMap((factor) => {
      if (factor.kind !== 'passkey') return [];
      const stored = parseStored(factor.secret);
      return stored ? [{ factor, stored }] : [];
    });
  }

  /** A `Set-Cookie` holding a new ceremony's challenge, sealed. */
  private start(purpose: Purpose, userId: string | null, challenge: string): string {
    const state: Challenge = {
      id: randomBytes(16).toString('base64url'),
      purpose,
      userId,
      challenge,
      expiresAt: this.now() + CHALLENGE_MS,
    };
    return this.cookie.serialize(this.box.seal(JSON.stringify(state), AAD), CHALLENGE_MS / 1000);
  }

  /**
   * The request's live challenge for `purpose` and `userId`, used up now (null when there is
   * none, or it was used before: on any process sharing the throttle store).
   */
  private async take(
    cookieHeader: string | null,
    purpose: Purpose,
    userId: string | null,
  ): Promise<Challenge | null> {
    const value = this.cookie.read(cookieHeader).value;
    const text = value === null ? null : this.box.open(value, AAD);
    const state = text === null ? null : parseChallenge(text);
    const now = this.now();
    if (!state || state.purpose !== purpose || state.userId !== userId) return null;
    if (now >= state.expiresAt) return null;
    const once = await callStore(() =>
      this.throttle.consumeAttempt(`webauthn:${state.id}`, now, ONCE),
    );
    return once.allowed ? state : null;
  }
}

function methodOf(deviceType: string): AuthMethod {
  return deviceType === 'singleDevice' ? 'hwk' : 'swk';
}

/** Enough of a `PublicKeyCredential` JSON to look its id up; the library checks the rest. */
function isCredential(value: unknown): value is { id: string; response: Record<string, unknown> } {
  if (typeof value !== 'object' || value === null) return false;
  const credential = value as Record<string, unknown>;
  return (
    typeof credential.id === 'string' &&
    credential.id.length > 0 &&
    credential.id.length <= 1024 &&
    typeof credential.response === 'object' &&
    credential.response !== null
  );
}

/** The account a discoverable passkey names (its user handle is our user id), or null. */
function userOfHandle(credential: { response: Record<string, unknown> }): string | null {
  const handle = credential.response.userHandle;
  if (typeof handle !== 'string' || !/^[A-Za-z0-9_-]{1,344}$/.test(handle)) return null;
  const userId = Buffer.from(handle, 'base64url').toString('utf8');
  return userId.length > 0 ? userId : null;
}

export function cleanName(name: unknown): string | null {
  if (typeof name !== 'string') return null;
  const clean = name.normalize('NFC').trim();
  if (clean.length === 0 || clean.length > MAX_NAME || /\p{Cc}/u.test(clean)) return null;
  return clean;
}

function parseStored(secret: string): StoredPasskey | null {
  try {
    const value = JSON.parse(secret) as Partial<StoredPasskey> | null;
    const ok =
      typeof value?.credentialId === 'string' &&
      typeof value.publicKey === 'string' &&
      Array.isArray(value.transports);
    return ok ? (value as StoredPasskey) : null;
  } catch {
    return null;
  }
}

function parseChallenge(text: string): Challenge | null {
  try {
    const value = JSON.parse(text) as Partial<Challenge> | null;
    const ok =
      typeof value?.id === 'string' &&
      (value.purpose === 'register' || value.purpose === 'authenticate') &&
      (value.userId === null || typeof value.userId === 'string') &&
      typeof value.challenge === 'string' &&
      typeof value.expiresAt === 'number';
    return ok ? (value as Challenge) : null;
  } catch {
    return null;
  }
}
