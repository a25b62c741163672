/**
 * Capped exponential backoff with "full jitter": the delay before retry number `attempt`
 * (1-based) is uniform in [base, min(cap, base * 2^(attempt-1))]. Jitter spreads retries of
 * many transactions that failed together (a participant restart) instead of stampeding it.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** exponent);
  return Math.round(policy.baseMs + (ceiling - policy.baseMs) * random());
}
