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

/**
 * How long to wait before asking again a participant that answered ongoing (PROTOCOL.md 3.6)
 * without saying when, having waited `waitedMs` for it so far: half that, within [base, cap].
 * Each wait is then about 1.5 times the one before, as an exponential backoff, but counted from
 * the wait's durable start (the branch's waitingSince) rather than from attempts, which count
 * failures only: a restart keeps the pace, and an approval that takes a day is asked every
 * `capMs` rather than every `baseMs`.
 */
export function waitingDelayMs(policy: BackoffPolicy, waitedMs: number): number {
  return Math.round(Math.min(policy.capMs, Math.max(policy.baseMs, waitedMs / 2)));
}
