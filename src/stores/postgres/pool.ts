import type { Pool } from 'pg';
import { ConfigError } from '../../core/errors.js';

/** `pool` when it looks like a `pg.Pool`, else a ConfigError. */
export function checkPool(pool: unknown): Pool {
  const methods = (pool ?? {}) as Partial<Record<'connect' | 'query' | 'on', unknown>>;
  if (
    typeof methods.connect !== 'function' ||
    typeof methods.query !== 'function' ||
    typeof methods.on !== 'function'
  ) {
    throw new ConfigError('pool: must be a pg.Pool');
  }
  return pool as Pool;
}
