/** A clock tests move by hand: expiry is tested without sleeping. */
export class FakeClock {
  constructor(public time = Date.UTC(2026, 0, 1)) {}
  readonly now = (): number => this.time;
  advance(ms: number): void {
    this.time += ms;
  }
}

/**
 * Real time plus an offset the test moves forward. Read from `performance`, not `Date.now`, so an
 * app that can only be given a clock by replacing `Date.now` may replace it with this one.
 */
export function movableClock(): { now: () => number; advance(ms: number): void } {
  let offset = 0;
  return {
    now: () => Math.round(performance.timeOrigin + performance.now()) + offset,
    advance: (ms) => {
      offset += ms;
    },
  };
}
