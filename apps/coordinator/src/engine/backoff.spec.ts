import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from './backoff.js';

describe('backoffDelayMs', () => {
  const policy = { baseMs: 100, capMs: 5_000 };

  it('grows exponentially with the attempt number at the top of the jitter range', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelayMs(policy, n, () => 1))).toEqual([100, 200, 400, 800]);
  });

  it('never goes below the base delay', () => {
    for (const attempt of [1, 5, 50]) expect(backoffDelayMs(policy, attempt, () => 0)).toBe(100);
  });

  it('is capped', () => {
    expect(backoffDelayMs(policy, 40, () => 1)).toBe(5_000);
    expect(backoffDelayMs(policy, 1_000_000, () => 1)).toBe(5_000);
  });

  it('spreads delays between base and the exponential ceiling', () => {
    expect(backoffDelayMs(policy, 4, () => 0.5)).toBe(450);
  });
});
