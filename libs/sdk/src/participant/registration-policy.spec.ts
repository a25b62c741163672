import { describe, expect, it } from 'vitest';
import { CoordinatorError } from '../client/coordinator-error.js';
import { classifyRegistrationFailure, RefreshGate, transientRetryMs } from './registration-policy.js';

const answer = (statusCode: number, error: string, message = 'no') =>
  new CoordinatorError(statusCode, { statusCode, error: error as never, message });

describe('RefreshGate', () => {
  it('lets one through per interval, however many ask', () => {
    let now = 1_000_000;
    const gate = new RefreshGate(10_000, () => now);
    expect(gate.tryPass()).toBe(true);
    for (let i = 0; i < 100; i++) expect(gate.tryPass()).toBe(false);
    now += 9_999;
    expect(gate.tryPass()).toBe(false);
    now += 1;
    expect(gate.tryPass()).toBe(true);
    expect(gate.tryPass()).toBe(false);
  });
});

describe('classifyRegistrationFailure', () => {
  it('names the cause of a 403 FORBIDDEN: the name is owned by another key, an operator must release it', () => {
    const failure = classifyRegistrationFailure(answer(403, 'FORBIDDEN', 'participant account belongs to another key'), 'account');
    expect(failure.kind).toBe('refused');
    expect(failure.line).toContain('403 FORBIDDEN');
    expect(failure.line).toContain('owned by another API key');
    expect(failure.line).toContain('operator must release it');
    expect(failure.line).not.toContain('\n');
  });

  it('treats the other answers that only an operator can change as refused', () => {
    expect(classifyRegistrationFailure(answer(401, 'UNAUTHENTICATED'), 'a')).toMatchObject({ kind: 'refused', line: expect.stringContaining('apiKey') });
    expect(classifyRegistrationFailure(answer(403, 'PARTICIPANT_HOST_NOT_ALLOWED'), 'a')).toMatchObject({ kind: 'refused', line: expect.stringContaining('PARTICIPANT_HOSTS') });
    expect(classifyRegistrationFailure(answer(403, 'PARTICIPANT_ADDRESS_NOT_ALLOWED'), 'a')).toMatchObject({ kind: 'refused', line: expect.stringContaining('PARTICIPANT_NETWORKS') });
    expect(classifyRegistrationFailure(answer(400, 'VALIDATION_FAILED'), 'a').kind).toBe('refused');
  });

  it('retries soon what may pass by itself: no answer, 5xx, rate limit, anything that is no answer', () => {
    expect(classifyRegistrationFailure(new CoordinatorError(0, null, 'unreachable'), 'a').kind).toBe('transient');
    expect(classifyRegistrationFailure(answer(503, 'STORE_UNAVAILABLE'), 'a').kind).toBe('transient');
    expect(classifyRegistrationFailure(answer(429, 'RATE_LIMITED'), 'a').kind).toBe('transient');
    expect(classifyRegistrationFailure(new SyntaxError('Unexpected token <'), 'a').kind).toBe('transient');
  });

  it('backs off from 200 ms to 5 s', () => {
    expect([1, 2, 3, 6, 20].map(transientRetryMs)).toEqual([200, 400, 800, 5_000, 5_000]);
  });
});
