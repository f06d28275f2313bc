import { describe, expect, it } from 'vitest';
import { nextTurn } from '../../src/stores/next-turn.js';

describe('nextTurn', () => {
  it('is one setImmediate for everyone who asks before it fires, and a new one after', async () => {
    const order: string[] = [];
    const first = nextTurn();
    const second = nextTurn();
    expect(second).toBe(first);
    setImmediate(() => order.push('immediate queued after the first ask'));
    void first.then(() => order.push('turn'));
    await first;
    const later = nextTurn();
    expect(later).not.toBe(first);
    await later;
    expect(order).toEqual(['turn', 'immediate queued after the first ask']);
  });
});
