import type { LatchkeyStore, SessionStore } from 'latchkey';

/** The session methods of a store, required port and capabilities alike. */
type SessionMethod =
  | keyof SessionStore
  | 'createCapped'
  | 'updateData'
  | 'listByUser'
  | 'deleteByUser'
  | 'deleteExpired';
export type StoreCalls = Record<SessionMethod & keyof LatchkeyStore, number>;

/** Wraps a real store and counts every call made to it, so tests can assert store traffic. */
export function countCalls<T extends SessionStore>(store: T): { store: T; calls: StoreCalls } {
  const calls: StoreCalls = {
    create: 0,
    createCapped: 0,
    get: 0,
    touch: 0,
    updateData: 0,
    delete: 0,
    listByUser: 0,
    deleteByUser: 0,
    deleteExpired: 0,
    close: 0,
  };
  const counted = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || !(property in calls)) return value;
      return (...args: unknown[]) => {
        calls[property as keyof StoreCalls]++;
        return value.apply(target, args);
      };
    },
  });
  return { store: counted, calls };
}
