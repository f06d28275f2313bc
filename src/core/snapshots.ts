import { InvalidInputError } from './errors.js';
import type { JsonObject, JsonValue } from './store.js';

/** Bound on a session's `user` and `data` snapshots, in UTF-8 bytes of their JSON. */
export const MAX_SNAPSHOT_BYTES = 8192;
const MAX_PATCH_DEPTH = 64;
/** A lone surrogate (like U+0000, checked apart): JSON can spell it, PostgreSQL's jsonb cannot keep it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** `value` as a session snapshot (`{}` when absent); throws {@link InvalidInputError} naming `label`. */
export function checkSnapshot(value: JsonObject | undefined, label: string): JsonObject {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInputError(`${label}: must be a plain JSON object`);
  }
  if (Buffer.byteLength(JSON.stringify(value)) > MAX_SNAPSHOT_BYTES) {
    throw new InvalidInputError(`${label}: must serialise to at most ${MAX_SNAPSHOT_BYTES} bytes`);
  }
  return value;
}

/**
 * Splits a `setData` patch into keys to set and keys to remove, after checking it is JSON-safe;
 * throws {@link InvalidInputError} saying where it is not.
 */
export function checkPatch(patch: unknown): { set: JsonObject; remove: string[] } {
  if (!isPlainObject(patch)) throw new InvalidInputError('data patch: must be a plain JSON object');
  checkJson(patch, 'data patch', 0);
  if (Buffer.byteLength(JSON.stringify(patch)) > MAX_SNAPSHOT_BYTES) {
    throw new InvalidInputError(
      `data patch: must serialise to at most ${MAX_SNAPSHOT_BYTES} bytes`,
    );
  }
  const set: [string, JsonValue][] = [];
  const remove: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) remove.push(key);
    else set.push([key, value as JsonValue]);
  }
  // fromEntries defines own properties, so a key named "__proto__" stays data.
  return { set: Object.fromEntries(set), remove };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkJson(value: unknown, path: string, depth: number): void {
  switch (typeof value) {
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidInputError(`${path}: must be a finite number`);
      return;
    case 'string':
      checkString(value, path);
      return;
    case 'object': {
      if (value === null) return;
      if (depth >= MAX_PATCH_DEPTH) {
        throw new InvalidInputError(`${path}: nested more than ${MAX_PATCH_DEPTH} levels deep`);
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value))
            throw new InvalidInputError(`${path}[${i}]: arrays must not have holes`);
          checkJson(value[i], `${path}[${i}]`, depth + 1);
        }
        return;
      }
      if (!isPlainObject(value)) {
        throw new InvalidInputError(`${path}: must be JSON (a plain object, not a class instance)`);
      }
      if (Object.getOwnPropertySymbols(value).length > 0) {
        throw new InvalidInputError(`${path}: symbol keys are not JSON`);
      }
      for (const [key, inner] of Object.entries(value)) {
        const at = `${path}.${JSON.stringify(key)}`;
        checkString(key, `${at} (key)`);
        checkJson(inner, at, depth + 1);
      }
      return;
    }
    default:
      throw new InvalidInputError(`${path}: ${typeof value} is not JSON`);
  }
}

function checkString(value: string, path: string): void {
  if (value.includes('\u0000') || LONE_SURROGATE.test(value)) {
    throw new InvalidInputError(`${path}: must not contain U+0000 or a lone surrogate`);
  }
}
