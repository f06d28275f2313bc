import { randomBytes } from 'node:crypto';
import type { SessionRecord } from '../../core/store.js';
import { type Cluster, casLoop, MAX_CAS_ROUNDS, RETRY } from './connection.js';
import { hashed } from './records.js';

/** An index entry: a session id and its `absoluteExpiresAt` (fixed at creation, never moved). */
export type Entry = readonly [id: string, absoluteExpiresAt: number];

/**
 * How long an index item outlives the absolute expiry of the sessions it names. An `append` never
 * moves an item's expiry, so each create pushes it to its own session's deadline plus this slack.
 */
const INDEX_SLACK_MS = 24 * 60 * 60_000;

/** One entry per line: the JSON `["id",absoluteExpiresAt]` (JSON strings hold no raw newline). */
function line(entry: Entry): string {
  return `${JSON.stringify(entry)}\n`;
}

/** The entries of an index item, in the order they were added; undecodable lines are skipped. */
export function entriesOf(bytes: Buffer | null): Entry[] {
  if (!bytes) return [];
  const entries: Entry[] = [];
  const seen = new Set<string>();
  for (const text of bytes.toString('utf8').split('\n')) {
    if (!text) continue;
    try {
      const value: unknown = JSON.parse(text);
      if (
        Array.isArray(value) &&
        typeof value[0] === 'string' &&
        typeof value[1] === 'number' &&
        !seen.has(value[0])
      ) {
        seen.add(value[0]);
        entries.push([value[0], value[1]]);
      }
    } catch {
      // A torn or foreign line names no session.
    }
  }
  return entries;
}

/**
 * The per-user index: one item `u:<sha256(userId)>` listing the user's session ids. A create
 * appends its entry (memcached's `append`: atomic, no race to lose); everything that removes
 * entries rewrites the item with a compare-and-swap loop, so no concurrent append is ever lost.
 * Entries whose record is gone (deleted, expired, evicted) are pruned lazily, when the index is
 * read whole anyway (list, capped create, delete-by-user).
 *
 * Beside it (on the same server) the user's revocation mark `r:<sha256(userId)>`: a random value
 * each revoke-all sets anew before it reads the entries. memcached has no multi-key transaction,
 * so a create reads the mark before it writes its record and again once its entry is in; a
 * changed mark means a revoke-all may have read the index before the entry was there (see
 * MemcachedSessions.create). A fresh random value, not a count, so a mark that expired and was
 * set again can never read as unchanged.
 */
export class UserIndex {
  constructor(private readonly memcached: Cluster) {}

  key(userId: string): string {
    return this.memcached.key(`u:${hashed(userId)}`);
  }

  /** The user's revocation mark (null while no revoke-all has set one). */
  async revocationMark(userId: string): Promise<string | null> {
    return (await this.memcached.read(this.markKey(userId)))?.toString('utf8') ?? null;
  }

  /** Revoke-all, step 1: sets a new revocation mark, then gives the entries stored after it. */
  async revoke(userId: string): Promise<Entry[]> {
    const mark = Buffer.from(randomBytes(12).toString('base64url'));
    // The mark outlives any create in flight when it is set.
    await this.memcached.write(this.markKey(userId), mark, Date.now() + INDEX_SLACK_MS);
    return this.entries(userId);
  }

  /** Adds `record`'s entry (its record is already written). */
  async add(record: SessionRecord): Promise<void> {
    const key = this.key(record.userId);
    const bytes = Buffer.from(line([record.id, record.absoluteExpiresAt]));
    const deadline = record.absoluteExpiresAt + INDEX_SLACK_MS;
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      if (await this.memcached.append(key, bytes)) {
        // Sessions of one user share one absolute lifetime, so this deadline is (within the
        // slack) the latest of the item's; a user whose sessions' lifetimes differ by more than
        // the slack could see the index expire before its longest-lived session.
        await this.memcached.touch(key, deadline);
        return;
      }
      if (await this.memcached.add(key, bytes, deadline)) return;
      // Another create made the item between our append and add: append to it.
    }
    throw new Error(`memcached: the index of a user kept vanishing (${MAX_CAS_ROUNDS} rounds)`);
  }

  /** The user's entries, as stored. */
  async entries(userId: string): Promise<Entry[]> {
    return entriesOf(await this.memcached.read(this.key(userId)));
  }

  /**
   * Rewrites the user's index in one compare-and-swap step per round: `change` gets the current
   * entries and gives the new ones, or null to write nothing. An empty index is deleted.
   */
  async rewrite(
    userId: string,
    change: (entries: Entry[]) => Promise<Entry[] | null>,
  ): Promise<boolean> {
    const key = this.key(userId);
    return casLoop(async () => {
      const item = await this.memcached.readCas(key);
      const entries = entriesOf(item?.value ?? null);
      const next = await change(entries);
      if (next === null) return false;
      const kept = next;
      if (!item) {
        if (kept.length === 0) return true;
        return (await this.memcached.add(key, encode(kept), deadlineOf(kept))) ? true : RETRY;
      }
      const result =
        kept.length === 0
          ? await this.memcached.deleteIfUnchanged(key, item.cas)
          : await this.memcached.cas(key, encode(kept), item.cas, deadlineOf(kept));
      return result === 'stored' ? true : RETRY;
    });
  }

  private markKey(userId: string): string {
    return this.memcached.keyBeside(`r:${hashed(userId)}`, this.key(userId));
  }

  /** Drops the entries of `ids` (records found gone), best effort: one round, a lost race is fine. */
  async prune(userId: string, ids: ReadonlySet<string>): Promise<void> {
    if (ids.size === 0) return;
    const key = this.key(userId);
    const item = await this.memcached.readCas(key);
    if (!item) return;
    const kept = entriesOf(item.value).filter(([id]) => !ids.has(id));
    if (kept.length === 0) await this.memcached.deleteIfUnchanged(key, item.cas);
    else await this.memcached.cas(key, encode(kept), item.cas, deadlineOf(kept));
  }
}

function encode(entries: readonly Entry[]): Buffer {
  return Buffer.from(entries.map(line).join(''));
}

function deadlineOf(entries: readonly Entry[]): number {
  let latest = 0;
  for (const [, absolute] of entries) latest = Math.max(latest, absolute);
  return latest + INDEX_SLACK_MS;
}
