import type { DataChange } from './capabilities.js';
import type { JsonObject } from './store.js';

/**
 * `current` with `change` applied, for stores that run JavaScript inside their atomic step
 * (memory, SQLite, a compare-and-swap loop): the merged data, or `too_large` when it would measure
 * more than `change.maxBytes` and more than `current` did (see `SessionDataPatch.updateData`).
 */
export function mergeData(current: JsonObject, change: DataChange): JsonObject | 'too_large' {
  const kept: JsonObject = { ...current };
  for (const key of change.remove) delete kept[key];
  // Spreads define own properties: a key named "__proto__" stays data.
  const data: JsonObject = { ...kept, ...change.set };
  const after = Buffer.byteLength(JSON.stringify(data));
  if (after > change.maxBytes && after > Buffer.byteLength(JSON.stringify(current))) {
    return 'too_large';
  }
  return data;
}
