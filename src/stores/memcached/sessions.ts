import type {
  DataChange,
  DataUpdate,
  SessionDataPatch,
  SessionIndex,
} from '../../core/capabilities.js';
import { mergeData } from '../../core/data.js';
import type { SessionRecord, SessionStore } from '../../core/store.js';
import { type Cluster, casLoop, RETRY } from './connection.js';
import { decodeSession, encodeSession, hashed } from './records.js';
import { type Entry, UserIndex } from './user-index.js';

/** Session ids as the core makes them (base64url); any other id is hashed into a safe key. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,200}$/;

/**
 * Sessions: `s:<id>` holds the record as JSON, expiring (memcached's own expiry) at its
 * `idleExpiresAt`. A validation is one `get`; a touch and a data patch are compare-and-swap loops
 * on that one item, so neither loses the other's change.
 *
 * A record whose server is down reads as none while another server is up (its user is logged
 * out; the record is never looked for elsewhere). The user's index item is not: a list, a
 * delete-by-user or a create that cannot reach it fails (503), so "log out everywhere" never
 * misses a session, and no session exists that it could miss.
 */
export class MemcachedSessions
  implements Omit<SessionStore, 'close'>, SessionIndex, SessionDataPatch
{
  private readonly index: UserIndex;

  constructor(private readonly memcached: Cluster) {
    this.index = new UserIndex(memcached);
  }

  /**
   * Record first, then its entry; the revocation mark read before the record is written and again
   * after the entry is in tells whether a revoke-all (`deleteByUser`, which sets a new mark, then
   * reads the entries) may have missed the entry. Where R sets its mark:
   * - before our first read: our record is written after R began, so R owes it nothing; we read
   *   the new mark twice and keep the session.
   * - between our two reads: R may have read the entries before ours was in, and the record may
   *   already be readable, so we delete it ourselves (revocation wins: a login racing a revoke-all
   *   loses; the entry left behind names no record and is pruned).
   * - after our second read: that is after our entry was in, so R reads it and deletes the record.
   * A mark lost meanwhile (evicted) reads as changed too: the session is dropped, never kept.
   */
  async create(record: SessionRecord): Promise<void> {
    const mark = await this.index.revocationMark(record.userId);
    await this.write(record);
    try {
      await this.index.add(record);
      if ((await this.index.revocationMark(record.userId)) !== mark) {
        await this.memcached.remove(this.key(record.id));
      }
    } catch (error) {
      // A session its user's index does not name could outlive "log out everywhere".
      await this.memcached.remove(this.key(record.id)).catch(() => false);
      throw error;
    }
  }

  /** Whether `id`'s server is up, or none is (then a create fails as an outage anyway). */
  acceptsSessionId(id: string): boolean {
    return this.memcached.isUp(this.key(id)) || !this.memcached.servers.anyUp();
  }

  async get(id: string): Promise<SessionRecord | null> {
    return decodeSession(
      await this.memcached.unlessDown(() => this.memcached.read(this.key(id)), null),
      id,
    );
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    const key = this.key(id);
    const touched = () =>
      casLoop(async () => {
        const item = await this.memcached.readCas(key);
        const current = decodeSession(item?.value ?? null, id);
        if (!item || !current) return undefined;
        const next = { ...current, lastSeenAt, idleExpiresAt };
        const result = await this.memcached.cas(key, encodeSession(next), item.cas, idleExpiresAt);
        return result === 'exists' ? RETRY : undefined;
      });
    await this.memcached.unlessDown(touched, undefined);
  }

  async delete(id: string): Promise<boolean> {
    // The user's index keeps the id until it is next read whole (it then finds no record). On a
    // server that is down there is nothing to delete now: it is flushed before it is used again.
    return this.memcached.unlessDown(() => this.memcached.remove(this.key(id)), false);
  }

  async updateData(id: string, change: DataChange): Promise<DataUpdate> {
    const key = this.key(id);
    const updated = () =>
      casLoop<DataUpdate>(async () => {
        const item = await this.memcached.readCas(key);
        const current = decodeSession(item?.value ?? null, id);
        if (!item || !current) return 'missing';
        if (Object.keys(change.set).length === 0 && change.remove.length === 0) return 'updated';
        const data = mergeData(current.data, change);
        if (data === 'too_large') return 'too_large';
        const next = { ...current, data };
        const result = await this.memcached.cas(
          key,
          encodeSession(next),
          item.cas,
          current.idleExpiresAt,
        );
        if (result === 'exists') return RETRY;
        return result === 'stored' ? 'updated' : 'missing';
      });
    return this.memcached.unlessDown(updated, 'missing');
  }

  /**
   * Writes the record first, then decides the cap in the index's compare-and-swap step, counting
   * the records its entries name that are alive at `record.createdAt`; at the cap the record is
   * deleted again (no other process knows its id yet). The revocation mark is read before the
   * record is written and again after, as in `create`: a changed mark deletes the record, and the
   * session counts as created (and revoked), so the engine does not evict others to retry.
   */
  async createCapped(record: SessionRecord, max: number): Promise<boolean> {
    const mark = await this.index.revocationMark(record.userId);
    await this.write(record);
    let created = false;
    try {
      await this.index.rewrite(record.userId, async (entries) => {
        created = false;
        const { live, gone } = await this.classify(entries, record.createdAt);
        if (live.length >= max) {
          return gone.size > 0 ? entries.filter(([id]) => !gone.has(id)) : null;
        }
        created = true;
        return [
          ...entries.filter(([id]) => !gone.has(id)),
          [record.id, record.absoluteExpiresAt] as Entry,
        ];
      });
      const revoked = created && (await this.index.revocationMark(record.userId)) !== mark;
      if (!created || revoked) await this.memcached.remove(this.key(record.id));
    } catch (error) {
      await this.memcached.remove(this.key(record.id)).catch(() => false);
      throw error;
    }
    return created;
  }

  async listByUser(userId: string, now: number): Promise<SessionRecord[]> {
    const entries = await this.index.entries(userId);
    const { live, gone } = await this.classify(entries, now);
    await this.index.prune(userId, gone);
    return live.sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Sets a new revocation mark before it reads the entries (see `create` for why a create racing
   * this cannot leave a session behind), deletes what it can reach, then fails (503) if a session
   * it names is on a server that is down: that session is logged out here, but another process
   * that still reaches its server would serve it, so "log out everywhere" must not report
   * success. Its entry stays for a retry.
   */
  async deleteByUser(userId: string, exceptId?: string): Promise<number> {
    const targets = new Set<string>();
    for (const [id] of await this.index.revoke(userId)) if (id !== exceptId) targets.add(id);
    const unreached = new Set<string>();
    const removed = await Promise.all(
      [...targets].map((id) =>
        this.memcached
          .unlessDown(() => this.memcached.remove(this.key(id)), null)
          .then((deleted) => {
            if (deleted === null) unreached.add(id);
            return deleted === true;
          }),
      ),
    );
    const done = new Set([...targets].filter((id) => !unreached.has(id)));
    // Entries appended meanwhile (sessions created after this call began) are kept.
    await this.index.rewrite(userId, async (entries) =>
      entries.some(([id]) => done.has(id)) ? entries.filter(([id]) => !done.has(id)) : null,
    );
    if (unreached.size > 0) {
      throw new Error(
        `memcached: ${unreached.size} of the user's sessions are on a server that is down; not all were deleted`,
      );
    }
    return removed.filter(Boolean).length;
  }

  private key(id: string): string {
    return this.memcached.key(SAFE_ID.test(id) ? `s:${id}` : `s#${hashed(id)}`);
  }

  private async write(record: SessionRecord): Promise<void> {
    await this.memcached.write(this.key(record.id), encodeSession(record), record.idleExpiresAt);
  }

  /**
   * The records `entries` name that are alive at `at`, and the ids whose record is gone. A record
   * on a server that is down is neither: it is logged out (not listed, not counted toward a cap)
   * but keeps its entry, in case its server comes back unflushed to another process.
   */
  private async classify(
    entries: readonly Entry[],
    at: number,
  ): Promise<{ live: SessionRecord[]; gone: Set<string> }> {
    const keys = entries.map(([id]) => this.key(id));
    const { found, unreachable } = await this.memcached.readMany(keys);
    const live: SessionRecord[] = [];
    const gone = new Set<string>();
    entries.forEach(([id], i) => {
      if (unreachable.has(keys[i] as string)) return;
      const record = decodeSession(found.get(keys[i] as string) ?? null, id);
      if (!record) gone.add(id);
      else if (at < record.idleExpiresAt) live.push(record);
    });
    return { live, gone };
  }
}
