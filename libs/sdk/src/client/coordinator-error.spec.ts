import { describe, expect, it } from 'vitest';
import { CoordinatorError, parseRetryAfter } from './coordinator-error.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');

  it('reads delay-seconds as milliseconds, spaces around allowed', () => {
    expect(parseRetryAfter('5', now)).toBe(5_000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 12 ', now)).toBe(12_000);
    expect(parseRetryAfter('120', now)).toBe(120_000);
  });

  it('reads an HTTP date as the time until it, and a date past as 0', () => {
    expect(parseRetryAfter(new Date(now + 7_000).toUTCString(), now)).toBe(7_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 12:00:00 GMT', now)).toBe(0);
  });

  it('null when absent or unreadable', () => {
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('', now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
  });

  it('is what a CoordinatorError carries, with the body code', () => {
    const error = new CoordinatorError(503, { statusCode: 503, error: 'OVERLOADED', message: 'busy' } as never, undefined, parseRetryAfter('3', now));
    expect(error).toMatchObject({ statusCode: 503, code: 'OVERLOADED', retryAfterMs: 3_000, message: 'busy' });
    expect(new CoordinatorError(0, null).code).toBe('NETWORK');
  });
});
