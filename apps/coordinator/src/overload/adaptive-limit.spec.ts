import { describe, expect, it } from 'vitest';
import { AdaptiveLimit } from './adaptive-limit.js';

const fast = 10;
const slowAfterMs = 500;

/** Reports `n` fast answers, each started with `inFlight` calls in flight (by default the whole limit, as it is then). */
function fastSamples(limit: AdaptiveLimit, n: number, inFlight?: number): void {
  for (let i = 0; i < n; i++) limit.onSample(fast, inFlight ?? limit.current, false);
}

describe('AdaptiveLimit', () => {
  it('starts at the initial limit, never above max', () => {
    expect(new AdaptiveLimit({ max: 10, initial: 4, slowAfterMs }).current).toBe(4);
    expect(new AdaptiveLimit({ max: 3, initial: 16, slowAfterMs }).current).toBe(3);
  });

  it('grows by one per fast answer while at least half of it is in use, up to max and no further', () => {
    const limit = new AdaptiveLimit({ max: 8, initial: 4, slowAfterMs });
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      limit.onSample(fast, limit.current, false);
      seen.push(limit.current);
    }
    expect(seen).toEqual([5, 6, 7, 8, 8, 8]);
    expect(limit.max).toBe(8);
  });

  it('does not grow on fast answers while the limit is not used (less than half in flight)', () => {
    const limit = new AdaptiveLimit({ max: 100, initial: 10, slowAfterMs });
    fastSamples(limit, 50, 4);
    expect(limit.current).toBe(10);
    limit.onSample(fast, 5, false);
    expect(limit.current).toBe(11);
  });

  it('shrinks by the backoff ratio on a drop (time-out or transient failure)', () => {
    const limit = new AdaptiveLimit({ max: 100, initial: 20, slowAfterMs });
    limit.onSample(fast, 20, true);
    expect(limit.current).toBe(18);
    limit.onSample(fast, 18, true);
    expect(limit.current).toBe(16); // 16.2
    const halving = new AdaptiveLimit({ max: 100, initial: 20, slowAfterMs, backoffRatio: 0.5 });
    halving.onSample(fast, 1, true);
    expect(halving.current).toBe(10);
  });

  it('shrinks on an answer slower than slowAfterMs, not on one that took exactly that long', () => {
    const limit = new AdaptiveLimit({ max: 100, initial: 20, slowAfterMs });
    limit.onSample(slowAfterMs, 20, false);
    expect(limit.current).toBe(21);
    limit.onSample(slowAfterMs + 1, 21, false);
    expect(limit.current).toBe(18); // 21 * 0.9 = 18.9
  });

  it('never goes below one, however many drops, and grows back from there', () => {
    const limit = new AdaptiveLimit({ max: 10, initial: 10, slowAfterMs });
    for (let i = 0; i < 200; i++) limit.onSample(5_000, 10, true);
    expect(limit.current).toBe(1);
    limit.onSample(fast, 1, false);
    expect(limit.current).toBe(2);
    fastSamples(limit, 100);
    expect(limit.current).toBe(10);
  });

  it('follows a lower max down at once, and grows to a higher one', () => {
    const limit = new AdaptiveLimit({ max: 10, initial: 10, slowAfterMs });
    limit.setMax(3);
    expect([limit.current, limit.max]).toEqual([3, 3]);
    fastSamples(limit, 10);
    expect(limit.current).toBe(3);
    limit.setMax(6);
    expect(limit.current).toBe(3);
    fastSamples(limit, 10);
    expect(limit.current).toBe(6);
  });

  it('restart: back to the initial limit (capped by the current max)', () => {
    const limit = new AdaptiveLimit({ max: 50, initial: 4, slowAfterMs });
    fastSamples(limit, 30);
    expect(limit.current).toBe(34);
    limit.restart();
    expect(limit.current).toBe(4);
    limit.setMax(2);
    limit.restart();
    expect(limit.current).toBe(2);
  });

  it('not adaptive: fixed at max whatever the samples, and at the new max after setMax or restart', () => {
    const limit = new AdaptiveLimit({ max: 7, initial: 2, slowAfterMs, adaptive: false });
    expect(limit.current).toBe(7);
    for (let i = 0; i < 20; i++) limit.onSample(5_000, 7, true);
    expect(limit.current).toBe(7);
    fastSamples(limit, 20);
    expect(limit.current).toBe(7);
    limit.setMax(12);
    expect(limit.current).toBe(12);
    limit.restart();
    expect(limit.current).toBe(12);
  });
});
