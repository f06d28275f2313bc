// ESM loader hooks for a child process (see light-import.test.ts): every URL the loader resolves
// is appended to a log file, with the module that asked for it, before the import goes on, so
// the log is complete when the child ends.
import { appendFileSync } from 'node:fs';

let log = '';

/** @param {{ log: string }} data */
export function initialize(data) {
  log = data.log;
}

/**
 * @param {string} specifier
 * @param {{ parentURL?: string }} context
 * @param {(specifier: string, context: object) => Promise<{ url: string }>} nextResolve
 */
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(log, `${resolved.url}\t${context.parentURL ?? ''}\n`);
  return resolved;
}
