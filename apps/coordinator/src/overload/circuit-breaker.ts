/** closed: calls go through; open: none does until `openUntil`; half_open: one probe is out. */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive transient failures that open it; 0: never opens. */
  failureThreshold: number;
  /** How long it stays open the first time; doubled after each failed probe, up to `maxOpenMs`. */
  openMs: number;
  maxOpenMs: number;
}

/**
 * One participant's circuit breaker. After `failureThreshold` transient failures in a row it
 * opens: no call is sent for `openMs`, and the transactions that needed one wait for their next
 * attempt (they are not failed: a phase 2 is owed until delivered). Then one probe call is let
 * through (half-open): an answer closes it, a transient failure opens it again for twice as long.
 * Business refusals (409) are answers, not failures. Pure: time comes from the caller.
 */
export class CircuitBreaker {
  private failures = 0;
  private stateNow: BreakerState = 'closed';
  private openUntil = 0;
  private openFor: number;
  private probeOut = false;
  /** How many times it opened (for the metrics and the admin view). */
  opened = 0;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.openFor = options.openMs;
  }

  state(now: number): BreakerState {
    if (this.stateNow === 'open' && now >= this.openUntil) return 'half_open';
    return this.stateNow;
  }

  /** When an open breaker lets its probe through (ms, on the caller's clock), or null when not open. */
  reopensAt(): number | null {
    return this.stateNow === 'open' ? this.openUntil : null;
  }

  /**
   * Whether a call may be sent now. In half-open only one at a time (the probe); the caller
   * must report its outcome with onSuccess / onFailure.
   */
  tryPass(now: number): boolean {
    const state = this.state(now);
    if (state === 'closed') return true;
    if (state === 'open' || this.probeOut) return false;
    this.stateNow = 'half_open';
    this.probeOut = true;
    return true;
  }

  /** An answer (ok, or a business refusal). Returns true when this closed an open breaker. */
  onSuccess(): boolean {
    this.failures = 0;
    this.probeOut = false;
    const wasOpen = this.stateNow !== 'closed';
    this.stateNow = 'closed';
    this.openFor = this.options.openMs;
    return wasOpen;
  }

  /** No answer, or a transient one. Returns true when this opened the breaker. */
  onFailure(now: number): boolean {
    if (this.options.failureThreshold <= 0) return false;
    if (this.stateNow === 'half_open') {
      this.probeOut = false;
      this.openFor = Math.min(this.options.maxOpenMs, this.openFor * 2);
      this.open(now);
      return true;
    }
    if (this.stateNow === 'open') return false;
    this.failures++;
    if (this.failures < this.options.failureThreshold) return false;
    this.open(now);
    return true;
  }

  private open(now: number): void {
    this.stateNow = 'open';
    this.openUntil = now + this.openFor;
    this.failures = 0;
    this.opened++;
  }
}
