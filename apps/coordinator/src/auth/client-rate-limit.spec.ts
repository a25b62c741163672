import { describe, expect, it } from 'vitest';
import { ClientRateLimiter, rateLimitTracker } from './client-rate-limit.js';

const T0 = 1_700_000_000_000; // a whole second

describe('ClientRateLimiter', () => {
  it('allows `limit` requests a minute per caller, then refuses with the seconds until one frees up', () => {
    const limiter = new ClientRateLimiter(3);
    expect(limiter.hit('a', T0)).toEqual({ allowed: true, limit: 3, remaining: 2, resetSeconds: 60 });
    expect(limiter.hit('a', T0 + 10_000)).toMatchObject({ allowed: true, remaining: 1, resetSeconds: 50 });
    expect(limiter.hit('a', T0 + 20_500)).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.hit('a', T0 + 30_000)).toEqual({ allowed: false, limit: 3, retryAfterSeconds: 30 });
    // Another caller has its own budget.
    expect(limiter.hit('b', T0 + 30_000)).toMatchObject({ allowed: true, remaining: 2 });
    // The first hit leaves the window a minute after its second: one request fits again, not two.
    expect(limiter.hit('a', T0 + 59_999)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.hit('a', T0 + 60_000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.hit('a', T0 + 60_001)).toEqual({ allowed: false, limit: 3, retryAfterSeconds: 10 });
    // Refused requests do not count: after a quiet minute the whole budget is back.
    expect(limiter.hit('a', T0 + 200_000)).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('keeps its answer within 1 to 60 seconds, and a burst within one second counts whole', () => {
    const limiter = new ClientRateLimiter(5);
    for (let i = 0; i < 5; i++) expect(limiter.hit('a', T0 + 900).allowed).toBe(true);
    expect(limiter.hit('a', T0 + 999)).toEqual({ allowed: false, limit: 5, retryAfterSeconds: 60 });
    expect(limiter.hit('a', T0 + 59_999)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.hit('a', T0 + 60_000)).toMatchObject({ allowed: true, remaining: 4 });
  });

  it('costs the same per request at a high limit, and forgets idle callers', () => {
    const limiter = new ClientRateLimiter(60_000);
    for (let i = 0; i < 120_000; i++) limiter.hit('a', T0 + i); // two minutes at 1000 requests a second
    expect(limiter.hit('a', T0 + 120_000)).toMatchObject({ allowed: true, remaining: 999 }); // seconds 61 to 119 (59,000 hits) and this one
    limiter.hit('b', T0);
    limiter.sweep(T0 + 61_000);
    expect(limiter.size).toBe(1);
    limiter.onApplicationShutdown();
    expect(limiter.size).toBe(0);
  });

  it('is off at 0', () => {
    expect(new ClientRateLimiter(0).enabled).toBe(false);
    expect(new ClientRateLimiter(1).enabled).toBe(true);
  });
});

describe('rateLimitTracker', () => {
  it('counts by key id when the request has a key, else by address', () => {
    expect(rateLimitTracker({ apiKey: { id: 'key#2' }, ip: '10.0.0.1' })).toBe('key#2');
    expect(rateLimitTracker({ ip: '10.0.0.1' })).toBe('ip:10.0.0.1');
    expect(rateLimitTracker({})).toBe('ip:unknown');
  });
});
