import { setTimeout as sleepFor } from 'node:timers/promises';
import { backoffDelayMs, type BackoffPolicy } from '../engine/backoff.js';
import type { MonotonicClock } from '../logging/outage-episode.js';

export interface RetryOptions {
  /** How long to keep trying, from the first attempt; 0: one attempt, no wait. */
  timeoutMs: number;
  /** The wait before retry n: capped exponential, with full jitter (engine/backoff.ts). */
  backoff: BackoffPolicy;
  /** Whether a failure may pass (the dependency is away); any other is thrown at once. */
  retryable(error: unknown): boolean;
  /** Each retryable failure; `retryInMs` is the wait before the next attempt, null when giving up. */
  onFailure?(error: unknown, attempt: number, retryInMs: number | null): void;
  /** For the tests: a monotonic clock, a sleep and a random source of their own. */
  clock?: MonotonicClock;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** Retryable failures went on for the whole timeout; the last one is the cause. */
export class RetryTimeoutError extends Error {
  constructor(
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly lastError: unknown,
  ) {
    super(`gave up after ${attempts} attempt(s) in ${Math.round(elapsedMs)} ms`, { cause: lastError });
    this.name = 'RetryTimeoutError';
  }
}

/**
 * Runs `attempt` until it succeeds, a failure is not retryable, or `timeoutMs` has passed since
 * the first attempt. The last wait is cut to what is left, so one attempt is made at the deadline.
 * Time comes from a monotonic clock: a wall-clock step must not end or stretch the wait.
 */
export async function retryWithBackoff<T>(attempt: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const now = options.clock ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => sleepFor(ms));
  const startedAt = now();
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (!options.retryable(error)) throw error;
      const elapsed = now() - startedAt;
      const left = options.timeoutMs - elapsed;
      if (left <= 0) {
        options.onFailure?.(error, n, null);
        throw new RetryTimeoutError(n, elapsed, error);
      }
      const delay = Math.min(backoffDelayMs(options.backoff, n, options.random), left);
      options.onFailure?.(error, n, delay);
      await sleep(delay);
    }
  }
}
