import { afterEach, describe, expect, it } from 'vitest';
import { RefusalLimiter } from './refusal-limiter.js';

describe('RefusalLimiter', () => {
  let limiter: RefusalLimiter | undefined;
  afterEach(() => limiter?.close());

  it('takes up to the limit at once, then says when the next token is back', () => {
    limiter = new RefusalLimiter(6);
    const now = 1_000_000;
    for (let i = 0; i < 6; i++) expect(limiter.take('10.0.0.1', now)).toEqual({ allowed: true });
    expect(limiter.take('10.0.0.1', now)).toEqual({ allowed: false, retryAfterSeconds: 10 });
    // Another address has its own bucket.
    expect(limiter.take('10.0.0.2', now)).toEqual({ allowed: true });
    // One token every 10 s at 6 a minute.
    expect(limiter.take('10.0.0.1', now + 9_000)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.take('10.0.0.1', now + 10_000)).toEqual({ allowed: true });
  });

  it('forgets addresses whose bucket has refilled', () => {
    limiter = new RefusalLimiter(60);
    limiter.take('a', 0);
    for (let i = 0; i < 60; i++) limiter.take('b', 30_000);
    limiter.sweep(61_000);
    expect(limiter.size).toBe(1);
    limiter.sweep(91_000);
    expect(limiter.size).toBe(0);
  });

  it('lets everything through when the limit is 0', () => {
    limiter = new RefusalLimiter(0);
    for (let i = 0; i < 100; i++) expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.size).toBe(0);
  });
});
