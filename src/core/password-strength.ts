import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { OverloadedError } from './errors.js';

/**
 * zxcvbn-ts scores only this many leading characters: its matchers grow much faster than
 * linearly with length (a 1,024-character patterned password takes seconds uncapped), and a
 * longer password that is strong at 32 characters is strong anyway.
 */
export const STRENGTH_MAX_LENGTH = 32;
/** Passwords the estimator scores below this (0-4) are refused: "safely unguessable" starts at 3. */
export const MIN_STRENGTH_SCORE = 3;
/** Estimates waiting beyond this many are refused at once (a flood must not queue without end). */
const MAX_PENDING = 64;

export interface PasswordStrength {
  /** zxcvbn's 0 (too guessable) to 4 (very unguessable). */
  readonly score: number;
  /** The estimator's feedback, in English; empty when it has none. */
  readonly feedback: string;
}

// The worker is plain CommonJS loaded by path, so it runs the same from src/ (tests) and dist/.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { ZxcvbnFactory } = require(workerData.core);
const common = require(workerData.common);
const en = require(workerData.en);
const zxcvbn = new ZxcvbnFactory({
  translations: en.translations,
  graphs: common.adjacencyGraphs,
  dictionary: { ...common.dictionary, ...en.dictionary },
  maxLength: workerData.maxLength,
});
parentPort.on('message', ({ id, password, userInputs }) => {
  try {
    const { score, feedback } = zxcvbn.check(password, userInputs);
    const text = [feedback.warning, ...feedback.suggestions].filter(Boolean).join(' ');
    parentPort.postMessage({ id, score, feedback: text });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error) });
  }
});
`;

interface Pending {
  resolve(strength: PasswordStrength): void;
  reject(error: Error): void;
}

/**
 * Runs zxcvbn-ts (with its common and English dictionaries) on a worker thread, so estimating a
 * password never blocks the event loop: the loop only posts a message of at most
 * {@link STRENGTH_MAX_LENGTH} characters. The worker starts on first use and never holds the
 * process open.
 */
class StrengthEstimator {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  estimate(password: string, userInputs: readonly string[]): Promise<PasswordStrength> {
    if (this.pending.size >= MAX_PENDING) return Promise.reject(new OverloadedError(1));
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({
        id,
        password: password.slice(0, STRENGTH_MAX_LENGTH),
        userInputs: userInputs.filter((input) => input.length > 0),
      });
    });
  }

  private start(): Worker {
    const require = createRequire(import.meta.url);
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        core: require.resolve('@zxcvbn-ts/core'),
        common: require.resolve('@zxcvbn-ts/language-common'),
        en: require.resolve('@zxcvbn-ts/language-en'),
        maxLength: STRENGTH_MAX_LENGTH,
      },
    });
    worker.unref();
    worker.on('message', (message: { id: number; error?: string } & PasswordStrength) => {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (this.pending.size === 0) worker.unref();
      if (message.error === undefined) {
        waiting.resolve({ score: message.score, feedback: message.feedback });
      } else {
        waiting.reject(new Error(`password strength estimate failed: ${message.error}`));
      }
    });
    const fail = (error: Error) => {
      this.worker = null;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`password strength worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}

const estimator = new StrengthEstimator();

/**
 * How guessable `password` is to zxcvbn-ts, with `userInputs` (the username, the site's name)
 * counted as words an attacker would try first. Throws {@link OverloadedError} when too many
 * estimates are already waiting.
 */
export function passwordStrength(
  password: string,
  userInputs: readonly string[],
): Promise<PasswordStrength> {
  return estimator.estimate(password, userInputs);
}
