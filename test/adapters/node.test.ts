import { describe } from 'vitest';
import { start } from '../../examples/node/app.js';
import { seedFlowTests } from './flow.js';

describe('latchkey/node: the example app over real HTTP', () => {
  seedFlowTests(start);
});
