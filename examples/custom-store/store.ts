import type { SessionRecord, SessionStore } from 'latchkey';

/**
 * A session store in one `Map`: the smallest store latchkey accepts. It implements only the
 * required port, so the engine serves the seed flow (log in, validate, slide, log out) and
 * refuses, when it is built, any option that needs more (`maxSessionsPerUser` needs the
 * "session index" capability, `setData` the "data patch" one, …).
 *
 * Every record is copied on the way in and out, so neither the caller nor the engine can change
 * a stored record by changing an object it holds (a real backend gets this from serialising).
 */
export class MapStore implements SessionStore {
  readonly #records = new Map<string, SessionRecord>();

  async create(record: SessionRecord): Promise<void> {
    this.#records.set(record.id, structuredClone(record));
  }

  /** The record as stored, expired or not (the engine decides), or null. */
  async get(id: string): Promise<SessionRecord | null> {
    const record = this.#records.get(id);
    return record ? structuredClone(record) : null;
  }

  /** Moves the sliding deadline; a deleted record stays deleted. */
  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    const record = this.#records.get(id);
    if (record) this.#records.set(id, { ...record, lastSeenAt, idleExpiresAt });
  }

  async delete(id: string): Promise<boolean> {
    return this.#records.delete(id);
  }

  /** Nothing to release: the map goes with the store. */
  async close(): Promise<void> {}
}
