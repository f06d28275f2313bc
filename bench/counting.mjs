/**
 * Counts calls to a store's methods from inside the server process, so "store calls per request"
 * is measured rather than assumed.
 */

/**
 * @typedef {{ calls: Record<string, number>, reset(): void, totals(): { calls: number, writes: number, byMethod: Record<string, number> } }} CallCounter
 */

/**
 * A proxy of `store` that counts calls to `methods`; every other property passes through.
 * @template {object} T
 * @param {T} store
 * @param {readonly string[]} methods
 * @param {readonly string[]} writeMethods the subset of `methods` that change the store
 * @returns {{ store: T, counter: CallCounter }}
 */
export function countingProxy(store, methods, writeMethods) {
  /** @type {Record<string, number>} */
  const calls = {};
  /** @type {Map<string, Function>} */
  const wrappers = new Map();
  for (const name of methods) {
    calls[name] = 0;
    wrappers.set(name, (/** @type {unknown[]} */ ...args) => {
      calls[name]++;
      // Bound to the real store: class fields and `this` checks see the original object.
      return Reflect.get(store, name).apply(store, args);
    });
  }
  const proxy = new Proxy(store, {
    get: (target, key, receiver) =>
      typeof key === 'string' && wrappers.has(key)
        ? wrappers.get(key)
        : Reflect.get(target, key, receiver),
  });
  const counter = {
    calls,
    reset() {
      for (const name of methods) calls[name] = 0;
    },
    totals() {
      let all = 0;
      let writes = 0;
      for (const name of methods) {
        all += calls[name];
        if (writeMethods.includes(name)) writes += calls[name];
      }
      return { calls: all, writes, byMethod: { ...calls } };
    },
  };
  return { store: proxy, counter };
}

/** A counter for cases without a store (bare node:http). */
export const noCounter = countingProxy({}, [], []).counter;

/**
 * Counts the statements a `pg.Pool` runs for the store: `pool.query` calls and checkouts
 * (`pool.connect`, one per transaction). The validation cache's LISTEN connection and its
 * heartbeat are a client of their own, not counted: they are not work per request.
 * @param {{ query: Function, connect: Function }} pool
 */
export function countQueries(pool) {
  let queries = 0;
  const query = pool.query.bind(pool);
  const connect = pool.connect.bind(pool);
  pool.query = (/** @type {unknown[]} */ ...args) => {
    queries++;
    return query(...args);
  };
  pool.connect = (/** @type {unknown[]} */ ...args) => {
    // pg-pool's own `query` checks out with a callback: that statement is counted already.
    if (typeof args[0] !== 'function') queries++;
    return connect(...args);
  };
  return {
    reset() {
      queries = 0;
    },
    total: () => queries,
  };
}
