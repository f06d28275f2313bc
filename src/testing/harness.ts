import { afterEach, beforeEach } from 'vitest';

/** How a contract suite opens the store under test: one fresh, isolated store per test. */
export interface StoreHarness<S extends { close(): Promise<void> }> {
  /** A fresh, empty store isolated from every other test run. */
  open(): Promise<S>;
  /** Drops whatever `open` created (prefix, schema, file). */
  cleanup?(): Promise<void>;
  /** A reason to skip (service absent); `LATCHKEY_REQUIRE_SERVICES=1` makes the skip a failure. */
  unavailable?(): Promise<string | null>;
  /**
   * Writes, under session id `id`, a record this store cannot decode (bad JSON, missing fields,
   * an unknown format): the contract checks it reads as no session. Give it whenever the backend
   * can hold such bytes.
   */
  corrupt?(store: S, id: string): Promise<void>;
}

/**
 * Opens a fresh store before each test of the enclosing `describe` and closes it after; gives a
 * getter for it. An absent service skips with a printed reason, or fails when services are required.
 */
export function useStore<S extends { close(): Promise<void> }>(
  name: string,
  harness: StoreHarness<S>,
): () => S {
  let store: S | null = null;
  beforeEach(async (context) => {
    const reason = (await harness.unavailable?.()) ?? null;
    if (reason) {
      if (process.env.LATCHKEY_REQUIRE_SERVICES === '1') {
        throw new Error(`${name} is required (LATCHKEY_REQUIRE_SERVICES=1) but ${reason}`);
      }
      console.warn(`skipping ${name}: ${reason}`);
      context.skip();
    }
    store = await harness.open();
  });
  afterEach(async () => {
    if (!store) return;
    await store.close();
    store = null;
    await harness.cleanup?.();
  });
  return () => {
    if (!store) throw new Error('store is not open');
    return store;
  };
}
