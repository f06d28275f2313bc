import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import type { SecondFactorStore, ThrottleStore } from './capabilities.js';
import { callStore } from './errors.js';
import type { EventListener } from './events.js';
import type { SecretBox } from './secret-box.js';
import type { AuthMethod, FactorKind, FactorRecord } from './store.js';
import { attemptRuleOf } from './throttle.js';

/** What pages and APIs may show of a factor: never its secret. */
export interface FactorSummary {
  readonly id: string;
  readonly kind: FactorKind;
  readonly name: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

/** An account's second factors, as its security page shows them. */
export interface SecondFactorStatus {
  /** Whether a login needs a second factor: a confirmed TOTP or a passkey exists. */
  readonly enabled: boolean;
  readonly totp: FactorSummary | null;
  readonly passkeys: readonly FactorSummary[];
  readonly recoveryCodesLeft: number;
}

/** A TOTP enrolment waiting for its first code: show `qrSvg` and `secret`, then confirm. */
export interface TotpEnrolment {
  readonly factorId: string;
  /** Base32, for typing into an authenticator app; never logged. */
  readonly secret: string;
  /** The `otpauth://` URI the QR code holds. */
  readonly uri: string;
  /** The URI as an inline SVG QR code. */
  readonly qrSvg: string;
}

/** A one-time code typed by the user: from the authenticator app, or a recovery code. */
export interface CodeProof {
  readonly type: 'totp' | 'recovery';
  readonly code: unknown;
}

export type CodeCheck =
  | { readonly ok: true; readonly amr: readonly AuthMethod[] }
  | { readonly ok: false; readonly error: 'invalid_code' }
  | { readonly ok: false; readonly error: 'too_many_attempts'; readonly retryAfterSeconds: number };

/** Enrolments left unconfirmed longer than this are void. */
const ENROLMENT_MS = 10 * 60_000;
const TOTP_PERIOD_SECONDS = 30;
const RECOVERY_CODES = 10;
/** RFC 4648 base32 without look-alikes is not needed: codes are compared case-insensitively. */
const RECOVERY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** 16 characters of base32: 80 bits, so a leaked SHA-256 of one cannot be reversed. */
const RECOVERY_LENGTH = 16;
const MAX_CODE_INPUT = 64;
const MAX_NAME = 64;
/** Code attempts per account: 5 per 30 s, and 50 an hour after 10 with doubling waits. */
const BURST_RULE = attemptRuleOf({
  windowMs: 30_000,
  limit: 5,
  freeAttempts: 5,
  baseDelayMs: 0,
  maxDelayMs: 0,
});
const HOURLY_RULE = attemptRuleOf({
  windowMs: 3_600_000,
  limit: 50,
  freeAttempts: 10,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
});

/**
 * Second factors of accounts: TOTP (RFC 6238) enrolment and checks, recovery codes, and the list
 * the security page shows. Secrets are sealed at rest (see {@link SecretBox}); a TOTP time step
 * is accepted once, through the store's atomic counter; code attempts are throttled per account
 * in the store, so limits hold across processes.
 */
export class SecondFactors {
  constructor(
    readonly store: SecondFactorStore,
    private readonly throttle: ThrottleStore,
    private readonly box: SecretBox,
    private readonly issuer: string,
    private readonly now: () => number,
    private readonly emit: EventListener,
  ) {}

  async status(userId: string): Promise<SecondFactorStatus> {
    const factors = await this.list(userId);
    const totp = factors.find((factor) => factor.kind === 'totp' && factor.confirmed) ?? null;
    const passkeys = factors.filter((factor) => factor.kind === 'passkey');
    return {
      enabled: totp !== null || passkeys.length > 0,
      totp: totp && summaryOf(totp),
      passkeys: passkeys.map(summaryOf),
      recoveryCodesLeft: factors.filter((factor) => factor.kind === 'recovery').length,
    };
  }

  /** Whether a password login for `userId` must be followed by a second factor. */
  async required(userId: string): Promise<boolean> {
    return (await this.status(userId)).enabled;
  }

  /**
   * Starts a TOTP enrolment for an account without one (null when it has one: remove it first).
   * It protects nothing until {@link confirmTotp} sees a code from it.
   */
  async beginTotp(userId: string, accountName: string): Promise<TotpEnrolment | null> {
    const factors = await this.list(userId);
    if (factors.some((factor) => factor.kind === 'totp' && factor.confirmed)) return null;
    for (const stale of factors.filter((factor) => factor.kind === 'totp')) {
      await callStore(() => this.store.deleteFactor(userId, stale.id));
    }
    const id = newId();
    const secret = new Secret({ size: 20 });
    await callStore(() =>
      this.store.createFactor({
        id,
        userId,
        kind: 'totp',
        name: 'Authenticator app',
        secret: this.box.seal(secret.base32, totpContext(userId, id)),
        counter: 0,
        confirmed: false,
        createdAt: this.now(),
        lastUsedAt: null,
      }),
    );
    return this.enrolmentOf(id, secret.base32, accountName);
  }

  /** An enrolment still waiting for its first code, shown again (after a wrong code), or null. */
  async pendingEnrolment(
    userId: string,
    factorId: string,
    accountName: string,
  ): Promise<TotpEnrolment | null> {
    const factor = (await this.list(userId)).find((candidate) =>
      this.isEnrolling(candidate, factorId),
    );
    const base32 = factor ? this.box.open(factor.secret, totpContext(userId, factor.id)) : null;
    return base32 === null ? null : this.enrolmentOf(factorId, base32, accountName);
  }

  private async enrolmentOf(
    factorId: string,
    base32: string,
    accountName: string,
  ): Promise<TotpEnrolment> {
    const uri = this.totpOf(Secret.fromBase32(base32), accountName).toString();
    const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    return { factorId, secret: base32, uri, qrSvg };
  }

  /**
   * Confirms an enrolment with its first code. Gives the account's new recovery codes (shown once)
   * when it had none, else an empty list.
   */
  async confirmTotp(
    userId: string,
    factorId: string,
    code: unknown,
  ): Promise<
    | { readonly ok: true; readonly recoveryCodes: readonly string[] }
    | Exclude<CodeCheck, { ok: true }>
  > {
    const throttled = await this.countAttempt(userId);
    if (throttled) return throttled;
    const factors = await this.list(userId);
    const factor = factors.find((candidate) => this.isEnrolling(candidate, factorId));
    if (!factor || !(await this.acceptTotp(factor, code)))
      return { ok: false, error: 'invalid_code' };
    if (!(await callStore(() => this.store.updateFactor(userId, factorId, { confirmed: true })))) {
      return { ok: false, error: 'invalid_code' };
    }
    this.emit({ type: 'second_factor_added', userId, kind: 'totp', factorId });
    const hasCodes = factors.some((candidate) => candidate.kind === 'recovery');
    return { ok: true, recoveryCodes: hasCodes ? [] : await this.newRecoveryCodes(userId) };
  }

  /** Checks a code at login or step-up; throttled per account. */
  async checkCode(userId: string, proof: CodeProof): Promise<CodeCheck> {
    const throttled = await this.countAttempt(userId);
    if (throttled) return throttled;
    const factors = await this.list(userId);
    if (proof.type === 'totp') {
      const totp = factors.find((factor) => factor.kind === 'totp' && factor.confirmed);
      const accepted = totp !== undefined && (await this.acceptTotp(totp, proof.code));
      return accepted ? { ok: true, amr: OTP } : { ok: false, error: 'invalid_code' };
    }
    const used = await this.useRecoveryCode(userId, factors, proof.code);
    return used ? { ok: true, amr: OTP } : { ok: false, error: 'invalid_code' };
  }

  /** New recovery codes (shown once) when the account has none, else an empty list. */
  async recoveryCodesIfNone(userId: string): Promise<readonly string[]> {
    const factors = await this.list(userId);
    if (factors.some((factor) => factor.kind === 'recovery')) return [];
    return this.newRecoveryCodes(userId);
  }

  /** Replaces the account's recovery codes with 10 new ones, shown once. */
  async regenerateRecoveryCodes(userId: string): Promise<readonly string[]> {
    await callStore(() => this.store.deleteFactors(userId, 'recovery'));
    return this.newRecoveryCodes(userId);
  }

  /** Renames a TOTP or passkey factor; false when there is no such factor or the name is bad. */
  async rename(userId: string, factorId: string, name: unknown): Promise<boolean> {
    if (typeof name !== 'string') return false;
    const clean = name.normalize('NFC').trim();
    if (clean.length === 0 || clean.length > MAX_NAME || /\p{Cc}/u.test(clean)) return false;
    const factor = (await this.list(userId)).find((candidate) => candidate.id === factorId);
    if (!factor || factor.kind === 'recovery') return false;
    return callStore(() => this.store.updateFactor(userId, factorId, { name: clean }));
  }

  /**
   * Removes one TOTP or passkey factor. When it was the last of them, the recovery codes go too:
   * they are a second factor only beside one.
   */
  async remove(userId: string, factorId: string): Promise<boolean> {
    const factor = (await this.list(userId)).find((candidate) => candidate.id === factorId);
    if (!factor || factor.kind === 'recovery') return false;
    if (!(await callStore(() => this.store.deleteFactor(userId, factorId)))) return false;
    if (!(await this.status(userId)).enabled) {
      await callStore(() => this.store.deleteFactors(userId, 'recovery'));
    }
    this.emit({ type: 'second_factor_removed', userId, factorId, by: 'user' });
    return true;
  }

  /** An administrator's reset: every factor of the account goes; gives how many. */
  async reset(userId: string): Promise<number> {
    const count = await callStore(() => this.store.deleteFactors(userId));
    this.emit({ type: 'second_factor_removed', userId, factorId: null, by: 'admin' });
    return count;
  }

  /** The user's factors, straight from the store. */
  list(userId: string): Promise<FactorRecord[]> {
    return callStore(() => this.store.listFactors(userId));
  }

  /** Counts one code attempt on the account; gives the refusal when over a limit. */
  async countAttempt(
    userId: string,
  ): Promise<{ ok: false; error: 'too_many_attempts'; retryAfterSeconds: number } | null> {
    const now = this.now();
    for (const [prefix, rule] of RULES) {
      const decision = await callStore(() =>
        this.throttle.consumeAttempt(`${prefix}${userId}`, now, rule),
      );
      if (!decision.allowed) {
        const retryAfterSeconds = Math.max(1, Math.ceil((decision.retryAt - now) / 1000));
        return { ok: false, error: 'too_many_attempts', retryAfterSeconds };
      }
    }
    return null;
  }

  /** Whether `code` is the factor's code now (±1 step) for a step above any used before. */
  private async acceptTotp(factor: FactorRecord, code: unknown): Promise<boolean> {
    const token = typeof code === 'string' ? code.replace(/\s/g, '') : '';
    if (!/^\d{6}$/.test(token)) return false;
    const base32 = this.box.open(factor.secret, totpContext(factor.userId, factor.id));
    if (base32 === null) return false;
    const timestamp = this.now();
    const totp = this.totpOf(Secret.fromBase32(base32), '');
    const delta = totp.validate({ token, timestamp, window: 1 });
    if (delta === null) return false;
    const step = TOTP.counter({ period: TOTP_PERIOD_SECONDS, timestamp }) + delta;
    // Atomic in the store: a step is accepted once, and never one at or below the last used.
    return callStore(() =>
      this.store.advanceFactorCounter(factor.userId, factor.id, step, timestamp),
    );
  }

  private async useRecoveryCode(
    userId: string,
    factors: readonly FactorRecord[],
    code: unknown,
  ): Promise<boolean> {
    const normalized = normalizeRecoveryCode(code);
    if (normalized === null) return false;
    const hash = Buffer.from(hashCode(normalized));
    const codes = factors.filter((factor) => factor.kind === 'recovery');
    // Every stored hash is compared, in constant time each: the match's position is not timed.
    let match: FactorRecord | null = null;
    for (const candidate of codes) {
      const stored = Buffer.from(candidate.secret);
      if (stored.length === hash.length && timingSafeEqual(stored, hash)) match = candidate;
    }
    if (!match) return false;
    const id = match.id;
    // Deleting is using: of two parallel uses of one code, one deletes it and the other fails.
    if (!(await callStore(() => this.store.deleteFactor(userId, id)))) return false;
    this.emit({ type: 'recovery_code_used', userId, remaining: codes.length - 1 });
    return true;
  }

  private async newRecoveryCodes(userId: string): Promise<readonly string[]> {
    const codes: string[] = [];
    const now = this.now();
    for (let i = 0; i < RECOVERY_CODES; i++) {
      const code = newRecoveryCode();
      codes.push(code);
      await callStore(() =>
        this.store.createFactor({
          id: newId(),
          userId,
          kind: 'recovery',
          name: '',
          secret: hashCode(normalizeRecoveryCode(code) as string),
          counter: 0,
          confirmed: true,
          createdAt: now,
          lastUsedAt: null,
        }),
      );
    }
    return codes;
  }

  /** Whether `factor` is the TOTP enrolment `factorId`, unconfirmed and not yet void. */
  private isEnrolling(factor: FactorRecord, factorId: string): boolean {
    return (
      factor.id === factorId &&
      factor.kind === 'totp' &&
      !factor.confirmed &&
      this.now() - factor.createdAt < ENROLMENT_MS
    );
  }

  private totpOf(secret: Secret, label: string): TOTP {
    return new TOTP({
      issuer: this.issuer,
      label,
      algorithm: 'SHA1',
      digits: 6,
      period: TOTP_PERIOD_SECONDS,
      secret,
    });
  }
}

const OTP: readonly AuthMethod[] = Object.freeze(['otp']);
const RULES: readonly (readonly [string, ReturnType<typeof attemptRuleOf>])[] = [
  ['otp-burst:', BURST_RULE],
  ['otp-hour:', HOURLY_RULE],
];

function summaryOf(factor: FactorRecord): FactorSummary {
  const { id, kind, name, createdAt, lastUsedAt } = factor;
  return { id, kind, name, createdAt, lastUsedAt };
}

/** A new factor id: 128 random bits, base64url. */
export function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** The context a TOTP secret is sealed for: it opens for this user's factor only. */
function totpContext(userId: string, factorId: string): string {
  return `latchkey totp\n${userId}\n${factorId}`;
}

function newRecoveryCode(): string {
  let code = '';
  for (let i = 0; i < RECOVERY_LENGTH; i++) {
    if (i > 0 && i % 4 === 0) code += '-';
    code += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
  }
  return code.toLowerCase();
}

/** The code without spaces or dashes, upper case; null when it cannot be a recovery code. */
function normalizeRecoveryCode(code: unknown): string | null {
  if (typeof code !== 'string' || code.length > MAX_CODE_INPUT) return null;
  const normalized = code.replace(/[\s-]/g, '').toUpperCase();
  return normalized.length === RECOVERY_LENGTH && /^[A-Z2-7]+$/.test(normalized)
    ? normalized
    : null;
}

function hashCode(normalized: string): string {
  return createHash('sha256').update(normalized).digest('base64url');
}
