import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from 'latchkey/stores/sqlite';
import { describeRememberStore } from './remember-store-contract.js';
import { describeSessionStore } from './session-store-contract.js';
import { describeThrottleStore } from './throttle-store-contract.js';
import { describeUserStore } from './user-store-contract.js';

let dir = '';
const sqlite = {
  async open() {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-contract-'));
    return new SqliteStore(join(dir, 'latchkey.db'));
  },
  async cleanup() {
    rmSync(dir, { recursive: true, force: true });
  },
};
describeSessionStore('sqlite', sqlite);
describeUserStore('sqlite', sqlite);
describeThrottleStore('sqlite', sqlite);
describeRememberStore('sqlite', sqlite);
