import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker.js';

const options = { failureThreshold: 3, openMs: 100, maxOpenMs: 500 };

/** A breaker opened at `at` by `threshold` failures in a row. */
function opened(at = 1_000, o = options): CircuitBreaker {
  const breaker = new CircuitBreaker(o);
  for (let i = 1; i < o.failureThreshold; i++) expect(breaker.onFailure(at)).toBe(false);
  expect(breaker.onFailure(at)).toBe(true);
  return breaker;
}

describe('CircuitBreaker', () => {
  it('starts closed and lets every call through', () => {
    const breaker = new CircuitBreaker(options);
    expect(breaker.state(0)).toBe('closed');
    expect(breaker.reopensAt()).toBeNull();
    for (let i = 0; i < 10; i++) expect(breaker.tryPass(i)).toBe(true);
  });

  it('opens after failureThreshold transient failures in a row, not before', () => {
    const breaker = new CircuitBreaker(options);
    expect(breaker.onFailure(0)).toBe(false);
    expect(breaker.onFailure(0)).toBe(false);
    expect(breaker.state(0)).toBe('closed');
    expect(breaker.onFailure(10)).toBe(true);
    expect(breaker.state(10)).toBe('open');
    expect(breaker.tryPass(10)).toBe(false);
    expect(breaker.reopensAt()).toBe(110);
    expect(breaker.opened).toBe(1);
  });

  it('an answer in between (ok or a business refusal, both onSuccess) starts the count again', () => {
    const breaker = new CircuitBreaker(options);
    for (let round = 0; round < 5; round++) {
      breaker.onFailure(0);
      breaker.onFailure(0);
      expect(breaker.onSuccess()).toBe(false);
    }
    expect(breaker.state(0)).toBe('closed');
    expect(breaker.opened).toBe(0);
  });

  it('stays open for openMs: no call passes, failures of calls still in flight change nothing', () => {
    const breaker = opened(1_000);
    for (const t of [1_000, 1_050, 1_099]) {
      expect(breaker.state(t)).toBe('open');
      expect(breaker.tryPass(t)).toBe(false);
    }
    expect(breaker.onFailure(1_050)).toBe(false);
    expect(breaker.reopensAt()).toBe(1_100);
    expect(breaker.opened).toBe(1);
  });

  it('half-open after openMs: exactly one probe passes until its outcome is known', () => {
    const breaker = opened(1_000);
    expect(breaker.state(1_100)).toBe('half_open');
    expect(breaker.tryPass(1_100)).toBe(true);
    expect(breaker.state(1_101)).toBe('half_open');
    for (let t = 1_101; t < 1_120; t++) expect(breaker.tryPass(t)).toBe(false);
    expect(breaker.reopensAt()).toBeNull();
  });

  it('a successful probe closes it: every call passes again, and the next opening lasts openMs again', () => {
    const breaker = opened(1_000);
    expect(breaker.tryPass(1_100)).toBe(true);
    expect(breaker.onSuccess()).toBe(true);
    expect(breaker.state(1_100)).toBe('closed');
    for (let i = 0; i < 5; i++) expect(breaker.tryPass(1_100)).toBe(true);
    expect(breaker.onSuccess()).toBe(false);
    for (let i = 0; i < 3; i++) breaker.onFailure(2_000);
    expect(breaker.reopensAt()).toBe(2_100);
  });

  it('a failed probe opens it again for twice as long, doubling up to maxOpenMs', () => {
    const breaker = opened(0);
    const openFor: number[] = [];
    let now = 0;
    for (let i = 0; i < 5; i++) {
      now = breaker.reopensAt()!;
      expect(breaker.tryPass(now - 1)).toBe(false);
      expect(breaker.tryPass(now)).toBe(true);
      expect(breaker.onFailure(now + 5)).toBe(true);
      openFor.push(breaker.reopensAt()! - (now + 5));
    }
    expect(openFor).toEqual([200, 400, 500, 500, 500]);
    expect(breaker.opened).toBe(6);
    // A success resets the doubling.
    now = breaker.reopensAt()!;
    breaker.tryPass(now);
    breaker.onSuccess();
    for (let i = 0; i < 3; i++) breaker.onFailure(now);
    expect(breaker.reopensAt()).toBe(now + 100);
  });

  it('failureThreshold 0: never opens', () => {
    const breaker = new CircuitBreaker({ ...options, failureThreshold: 0 });
    for (let i = 0; i < 100; i++) expect(breaker.onFailure(i)).toBe(false);
    expect(breaker.state(100)).toBe('closed');
    expect(breaker.tryPass(100)).toBe(true);
  });
});
