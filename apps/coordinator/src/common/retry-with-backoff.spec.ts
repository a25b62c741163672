import { describe, expect, it } from 'vitest';
import { retryWithBackoff, RetryTimeoutError, type RetryOptions } from './retry-with-backoff.js';

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5491'), { code: 'ECONNREFUSED' });

/** A fake clock that only the fake sleep moves, and the waits it was asked for. */
function fakeTime(options: Partial<RetryOptions> = {}) {
  let now = 0;
  const waits: number[] = [];
  const failures: { attempt: number; retryInMs: number | null }[] = [];
  const base: RetryOptions = {
    timeoutMs: 120_000,
    backoff: { baseMs: 500, capMs: 5_000 },
    retryable: (error) => error instanceof Error && error.message.includes('ECONNREFUSED'),
    onFailure: (_error, attempt, retryInMs) => failures.push({ attempt, retryInMs }),
    clock: () => now,
    sleep: (ms) => {
      waits.push(ms);
      now += ms;
      return Promise.resolve();
    },
    random: () => 1,
    ...options,
  };
  return { options: base, waits, failures, elapsed: () => now };
}

/** An attempt that fails `times` times with `error`, then answers. */
function failing(times: number, error: () => Error = refused) {
  let calls = 0;
  return {
    attempt: (): Promise<string> => (++calls <= times ? Promise.reject(error()) : Promise.resolve(`answered on ${calls}`)),
    calls: () => calls,
  };
}

describe('retryWithBackoff', () => {
  it('answers at once when the first attempt succeeds', async () => {
    const time = fakeTime();
    expect(await retryWithBackoff(failing(0).attempt, time.options)).toBe('answered on 1');
    expect(time.waits).toEqual([]);
  });

  it('waits 0.5 s, doubling up to 5 s, between retryable failures, then returns the answer', async () => {
    const time = fakeTime();
    expect(await retryWithBackoff(failing(7).attempt, time.options)).toBe('answered on 8');
    expect(time.waits).toEqual([500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
    expect(time.failures.map((failure) => failure.retryInMs)).toEqual(time.waits);
  });

  it('spreads the waits with full jitter between the base and the ceiling', async () => {
    const low = fakeTime({ random: () => 0 });
    await retryWithBackoff(failing(4).attempt, low.options);
    expect(low.waits).toEqual([500, 500, 500, 500]);
    const half = fakeTime({ random: () => 0.5 });
    await retryWithBackoff(failing(5).attempt, half.options);
    expect(half.waits).toEqual([500, 750, 1_250, 2_250, 2_750]);
  });

  it('gives up once the timeout has passed, after one last attempt at the deadline', async () => {
    const time = fakeTime({ timeoutMs: 3_000 });
    const attempts = failing(100);
    const error = await retryWithBackoff(attempts.attempt, time.options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryTimeoutError);
    const timedOut = error as RetryTimeoutError;
    // 500 + 1000, then what is left of 3 s (1500, not 2000), then the attempt at 3 s fails.
    expect(time.waits).toEqual([500, 1_000, 1_500]);
    expect(attempts.calls()).toBe(4);
    expect(timedOut.attempts).toBe(4);
    expect(timedOut.elapsedMs).toBe(3_000);
    expect((timedOut.lastError as Error).message).toBe('connect ECONNREFUSED 127.0.0.1:5491');
    expect(time.failures.at(-1)).toEqual({ attempt: 4, retryInMs: null });
  });

  it('makes one attempt and no wait with a timeout of 0', async () => {
    const time = fakeTime({ timeoutMs: 0 });
    const attempts = failing(1);
    await expect(retryWithBackoff(attempts.attempt, time.options)).rejects.toBeInstanceOf(RetryTimeoutError);
    expect(attempts.calls()).toBe(1);
    expect(time.waits).toEqual([]);
  });

  it('throws a failure that is not retryable at once, as it is', async () => {
    const time = fakeTime();
    const denied = () => Object.assign(new Error('password authentication failed for user "dtx"'), { code: '28P01' });
    const attempts = failing(1, denied);
    await expect(retryWithBackoff(attempts.attempt, time.options)).rejects.toThrow(/^password authentication failed/);
    expect(attempts.calls()).toBe(1);
    expect(time.failures).toEqual([]);
  });

  it('sleeps for real without a fake clock', async () => {
    const attempts = failing(1);
    const started = performance.now();
    const answer = await retryWithBackoff(attempts.attempt, { timeoutMs: 1_000, backoff: { baseMs: 20, capMs: 20 }, retryable: () => true });
    expect(answer).toBe('answered on 2');
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
  });
});
