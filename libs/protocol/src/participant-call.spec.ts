import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, ongoingOutcome, readRetryAfterMs } from './participant-call.js';

describe('an ongoing answer’s retryAfterMs (PROTOCOL.md 3.6)', () => {
  it('is a hint when it is a positive safe integer, clamped to an hour', () => {
    expect(readRetryAfterMs(1)).toBe(1);
    expect(readRetryAfterMs(2000)).toBe(2000);
    expect(readRetryAfterMs(MAX_RETRY_AFTER_MS)).toBe(MAX_RETRY_AFTER_MS);
    expect(readRetryAfterMs(MAX_RETRY_AFTER_MS + 1)).toBe(MAX_RETRY_AFTER_MS);
    expect(MAX_RETRY_AFTER_MS).toBe(3_600_000);
  });

  it('is no hint otherwise, never a reason to refuse the answer', () => {
    for (const value of [undefined, null, 0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '2000', [2000], { ms: 2000 }, true]) {
      expect(readRetryAfterMs(value)).toBeUndefined();
    }
  });

  it('is read from an object body only; any other body is an ongoing answer without a hint', () => {
    expect(ongoingOutcome({ retryAfterMs: 2000 })).toEqual({ kind: 'ongoing', retryAfterMs: 2000 });
    expect(ongoingOutcome({ retryAfterMs: 2000, extra: true })).toEqual({ kind: 'ongoing', retryAfterMs: 2000 });
    for (const body of [null, '', 'later', 2000, [2000], {}, { retryAfterMs: '2000' }]) expect(ongoingOutcome(body)).toEqual({ kind: 'ongoing' });
  });
});
