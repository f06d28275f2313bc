import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { type Algorithm, hash, verify } from '@node-rs/argon2';
import { LatchkeyError, OverloadedError } from './errors.js';
import { MIN_STRENGTH_SCORE, passwordStrength } from './password-strength.js';

export const USERNAME_MAX_LENGTH = 64;
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1024;

/** Argon2id at the OWASP / ASVS minimum: 19 MiB, 2 passes, 1 lane. */
export const ARGON2_PARAMS = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
const ARGON2ID = 2 as Algorithm.Argon2id;
const ARGON2ID_PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;

/**
 * Never part of a name, old or new: controls, lone surrogates, line separators and format
 * characters (U+200B, U+200E/F, U+FEFF, U+00AD, bidi overrides…) except ZWNJ/ZWJ, which some
 * scripts spell with.
 */
const INVISIBLE = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}]|(?![\u200c\u200d])\p{Cf}/u;
/** Fullwidth and halfwidth forms (and the ideographic space): mapped to their plain forms. */
const WIDTH_FORMS = /[\u3000\uff01-\uffee]/g;
const HAS_WIDTH_FORM = /[\u3000\uff01-\uffee]/;
/** Only ASCII white space is trimmed: `trim()` would also drop U+FEFF, which must be refused. */
const ASCII_SPACE_AROUND = /^[\t\n\f\r ]+|[\t\n\f\r ]+$/g;
/** The IdentifierClass letters, marks and digits (RFC 8264 §9.1, LetterDigits). */
const LETTER_DIGIT = /^[\p{Ll}\p{Lu}\p{Lo}\p{Lm}\p{Mn}\p{Mc}\p{Nd}]$/u;
/** LetterDigits that RFC 5892's exceptions disallow (tatweel, NKo lajanyalan, Kana repeat marks…). */
const EXCEPTIONS_DISALLOWED = /^[\u0640\u07fa\u302e\u302f\u3031-\u3035\u303b]$/;
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Cn}\p{Co}]$/u;
/** Right-to-left scripts: the Bidi Rule's R and AL, approximated by script. */
const RTL =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}]/u;
const LETTER = /\p{L}/u;
const TRAILING_MARKS = /\p{M}+$/u;
const DIGIT = /\p{Nd}/u;

/** Why a new username or password is refused; `message` is safe to show the user. */
export class CredentialError extends LatchkeyError {
  override name = 'CredentialError';
  constructor(
    readonly code: 'invalid_username' | 'invalid_password' | 'weak_password' | 'username_taken',
    message: string,
  ) {
    super(message);
  }
}

/**
 * A username as it is looked up, stored and shown: fullwidth and halfwidth forms mapped
 * (`ａｄｍｉｎ` → `admin`), NFC, trimmed of ASCII white space. Null when it is not a string, is empty, is longer
 * than {@link USERNAME_MAX_LENGTH} characters or holds an invisible character. A new account
 * also needs {@link usernameProblem} to be null.
 */
export function normalizeUsername(value: unknown): string | null {
  // Length is checked before normalising too, so a megabyte of input costs nothing.
  if (typeof value !== 'string' || value.length > 4 * USERNAME_MAX_LENGTH) return null;
  const username = mapWidth(value).normalize('NFC').replace(ASCII_SPACE_AROUND, '');
  const length = codePointLength(username);
  if (length === 0 || length > USERNAME_MAX_LENGTH) return null;
  return INVISIBLE.test(username) ? null : username;
}

/**
 * Why a {@link normalizeUsername}d name cannot name a new account, or null when it can: each
 * space-separated word holds only IdentifierClass characters (letters, marks and digits with no
 * compatibility form, printable ASCII) and meets the Bidi Rule (approximated by script).
 */
export function usernameProblem(username: string): 'character' | 'spaces' | 'direction' | null {
  for (const word of username.split(' ')) {
    if (word === '') return 'spaces';
    for (const char of word) {
      if (!isIdentifierChar(char)) return 'character';
    }
    if (!meetsBidiRule([...word])) return 'direction';
  }
  if (/[\u0660-\u0669]/.test(username) && /[\u06f0-\u06f9]/.test(username)) return 'character';
  return null;
}

/**
 * What uniqueness and lookups compare: width-mapped and NFC like {@link normalizeUsername}, then
 * full case folding, so "Straße", "STRASSE", "ＳＴＲＡＳＳＥ" and an NFD-typed "straße" are one
 * account. JavaScript has no case folding; lower, upper, lower covers it (ß and ẞ become ss,
 * final ς becomes σ).
 */
export function usernameKey(username: string): string {
  return foldCase(mapWidth(username).normalize('NFC'));
}

/**
 * The key an account named `username` got before width mapping (latchkey 0.1), when it differs
 * from {@link usernameKey}: such accounts are still found by the name they signed up with.
 */
export function legacyUsernameKey(username: string): string | null {
  return HAS_WIDTH_FORM.test(username)
    ? foldCase(username.normalize('NFC').replace(ASCII_SPACE_AROUND, ''))
    : null;
}

/**
 * Why `value` cannot be a password, or null when it can. Oversize input is refused by its raw
 * length before anything else touches it.
 */
export function passwordProblem(value: unknown): 'missing' | 'too_short' | 'too_long' | null {
  if (typeof value !== 'string' || value.length === 0) return 'missing';
  if (value.length > 2 * PASSWORD_MAX_LENGTH) return 'too_long';
  const length = codePointLength(value);
  if (length > PASSWORD_MAX_LENGTH) return 'too_long';
  return length < PASSWORD_MIN_LENGTH ? 'too_short' : null;
}

/**
 * Checks a new password (sign-up, password change) and hashes it with {@link hashPassword}.
 * Throws {@link CredentialError} unless `value` is long enough, not on the common-password list,
 * and scored at least {@link MIN_STRENGTH_SCORE} by zxcvbn-ts with `userInputs` (the username, the
 * site's name) as words an attacker tries first; the refusal's message carries the estimator's
 * feedback. At most one such hash runs at a time, so logins keep the other hashing slots. A new
 * password arriving when {@link NEW_PASSWORD_QUEUE} others already wait (for their estimate or
 * their hash) throws {@link OverloadedError} at once, before any estimate is spent on it.
 */
export async function hashNewPassword(
  value: unknown,
  userInputs: readonly string[],
): Promise<string> {
  const password = checkPasswordRules(value);
  if (newPasswordsInLine > NEW_PASSWORD_QUEUE) throw new OverloadedError(1);
  newPasswordsInLine++;
  try {
    await checkStrength(password, userInputs);
    return await newPasswords.run(() => hashPassword(password));
  } finally {
    newPasswordsInLine--;
  }
}

/** The cheap checks of a new password, made before it takes a place in line. */
function checkPasswordRules(value: unknown): string {
  const problem = passwordProblem(value);
  if (problem === 'too_long') {
    throw new CredentialError(
      'invalid_password',
      `Password must be at most ${PASSWORD_MAX_LENGTH} characters.`,
    );
  }
  if (problem !== null) {
    throw new CredentialError(
      'invalid_password',
      `Password must be at least ${PASSWORD_MIN_LENGTH} characters.`,
    );
  }
  if (isCommonPassword(value as string)) {
    throw new CredentialError(
      'weak_password',
      'That password is one of the most commonly used; choose another.',
    );
  }
  return value as string;
}

async function checkStrength(password: string, userInputs: readonly string[]): Promise<void> {
  const strength = await passwordStrength(password, userInputs);
  if (strength.score < MIN_STRENGTH_SCORE) {
    const feedback = strength.feedback === '' ? '' : ` ${strength.feedback}`;
    throw new CredentialError(
      'weak_password',
      `That password is too easy to guess.${feedback} A few uncommon words together are strong and easy to remember.`,
    );
  }
}

/** True for the 10,000 most common passwords (data/common-passwords.txt), in any letter case. */
export function isCommonPassword(password: string): boolean {
  commonPasswords ??= new Set(
    readFileSync(new URL('../../data/common-passwords.txt', import.meta.url), 'utf8').split('\n'),
  );
  return commonPasswords.has(password.normalize('NFC').toLowerCase());
}
let commonPasswords: Set<string> | undefined;

/** Hashes a password with argon2id and a fresh random salt; gives the PHC string. */
export function hashPassword(password: string): Promise<string> {
  return hashing.run(() =>
    hash(normalizePassword(password), { ...ARGON2_PARAMS, algorithm: ARGON2ID }),
  );
}

/** Whether `password` matches the PHC string `phc`. A malformed hash is a mismatch, not an error. */
export function verifyPassword(phc: string, password: string): Promise<boolean> {
  return hashing.run(() => verify(phc, normalizePassword(password)).catch(() => false));
}

/**
 * Spends the same work as {@link verifyPassword} on a hash no password matches, so a login for
 * an unknown username takes as long as one with a wrong password. Always false.
 */
export async function verifyDummyPassword(password: string): Promise<false> {
  dummyHash ??= hashPassword(randomBytes(32).toString('base64url'));
  await verifyPassword(await dummyHash, password);
  return false;
}
let dummyHash: Promise<string> | undefined;

/** The argon2id cost parameters in a PHC string, or null when it is not an argon2id v19 hash. */
export function argon2Params(
  phc: string,
): { memoryCost: number; timeCost: number; parallelism: number } | null {
  const match = ARGON2ID_PHC.exec(phc);
  if (!match) return null;
  return {
    memoryCost: Number(match[1]),
    timeCost: Number(match[2]),
    parallelism: Number(match[3]),
  };
}

/** True when `phc` was made with other parameters than {@link ARGON2_PARAMS}. */
export function needsRehash(phc: string): boolean {
  const params = argon2Params(phc);
  return (
    params === null ||
    params.memoryCost !== ARGON2_PARAMS.memoryCost ||
    params.timeCost !== ARGON2_PARAMS.timeCost ||
    params.parallelism !== ARGON2_PARAMS.parallelism
  );
}

/**
 * NIST SP 800-63B 5.1.1.2: passwords are compared after Unicode normalisation, so the same
 * password typed on systems that compose accents differently still matches. No case folding.
 */
function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

function codePointLength(text: string): number {
  let length = 0;
  for (const _ of text) length++;
  return length;
}

/**
 * Runs at most `limit` tasks at once and queues the rest in order. Hashing runs on libuv's thread
 * pool; without a limit a login storm would occupy every pool thread and stall file and DNS work.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Hashes at once: one core always stays with the event loop (a login storm must not stall
 * validated requests), and one thread-pool thread (default 4) stays free for other I/O.
 */
const threadPoolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4;
const hashing = new Semaphore(
  Math.max(1, Math.min(availableParallelism() - 1, threadPoolSize - 1)),
);

function foldCase(text: string): string {
  return text.toLowerCase().toUpperCase().toLowerCase().normalize('NFC');
}

function mapWidth(text: string): string {
  return text.replace(WIDTH_FORMS, (char) => char.normalize('NFKC'));
}

function isIdentifierChar(char: string): boolean {
  if (char >= '\x21' && char <= '\x7e') return true;
  return (
    LETTER_DIGIT.test(char) &&
    !EXCEPTIONS_DISALLOWED.test(char) &&
    !IGNORABLE.test(char) &&
    char.normalize('NFKC') === char
  );
}

/**
 * RFC 5893 in short: a word with right-to-left letters starts with one, holds no left-to-right
 * letters and ends with a right-to-left letter or a digit (then marks).
 */
function meetsBidiRule(chars: readonly string[]): boolean {
  if (!chars.some((char) => RTL.test(char))) return true;
  if (!RTL.test(chars[0] ?? '')) return false;
  if (chars.some((char) => LETTER.test(char) && !RTL.test(char))) return false;
  const last = [...chars.join('').replace(TRAILING_MARKS, '')].at(-1) ?? '';
  return RTL.test(last) || DIGIT.test(last);
}

/** New passwords that may wait: about half a second of sign-ups at one hash at a time. */
export const NEW_PASSWORD_QUEUE = 16;
const newPasswords = new Semaphore(1);
/** New passwords being estimated, waiting for their hash, or hashed. */
let newPasswordsInLine = 0;

/** Login usernames longer than this are refused unread; latchkey's own accounts allow 64. */
const MAX_LOGIN_USERNAME = 256;

/** Login fields as strings within bounds, or null: decided before any hashing. */
export function readLoginInput(
  credentials: { readonly username?: unknown; readonly password?: unknown } | null | undefined,
): { username: string; password: string } | null {
  const username = credentials?.username;
  const password = credentials?.password;
  if (typeof username !== 'string' || typeof password !== 'string') return null;
  if (username.trim().length === 0 || username.length > MAX_LOGIN_USERNAME) return null;
  const problem = passwordProblem(password);
  if (problem === 'missing' || problem === 'too_long') return null;
  return { username: username.normalize('NFC').trim(), password };
}
