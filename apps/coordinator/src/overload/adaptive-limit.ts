/**
 * How many calls one participant may have in flight from this instance, found by additive
 * increase and multiplicative decrease (Netflix concurrency-limits' AIMD): every answer that
 * came quickly while the limit was in use raises it by one; a drop (no answer in time, a
 * transient failure, an answer slower than `slowAfterMs`) cuts it by `backoffRatio`. The
 * participant's capacity is found without configuring it, and a participant that slows down
 * gets fewer calls at once, not more time-outs. Pure: the caller measures and reports.
 */
export interface AdaptiveLimitOptions {
  /** The ceiling: the configured (or operator's) bound on calls in flight. */
  max: number;
  /** Where the limit starts (and restarts after the breaker closed); at most `max`. */
  initial: number;
  /** An answer slower than this counts as a drop: the participant is queueing our calls. */
  slowAfterMs: number;
  backoffRatio?: number;
  /** Off: the limit stays at `max` (PARTICIPANT_ADAPTIVE_LIMIT=false). */
  adaptive?: boolean;
}

export class AdaptiveLimit {
  private value: number;
  private ceiling: number;
  private readonly backoffRatio: number;
  private readonly adaptive: boolean;

  constructor(private readonly options: AdaptiveLimitOptions) {
    this.ceiling = options.max;
    this.backoffRatio = options.backoffRatio ?? 0.9;
    this.adaptive = options.adaptive ?? true;
    this.value = this.adaptive ? Math.min(options.initial, options.max) : options.max;
  }

  /** The current limit, a whole number of calls, at least one. */
  get current(): number {
    return Math.max(1, Math.floor(this.value));
  }

  get max(): number {
    return this.ceiling;
  }

  /** An operator's or a registration's new ceiling; the limit follows it down at once. */
  setMax(max: number): void {
    this.ceiling = max;
    this.value = this.adaptive ? Math.min(this.value, max) : max;
  }

  /**
   * One finished call: `dropped` when it got no answer in time or a transient failure;
   * `inFlight` is how many were in flight when it started (a limit that was not used says
   * nothing about whether a higher one would hold, so it only grows when half of it was in use).
   */
  onSample(latencyMs: number, inFlight: number, dropped: boolean): void {
    if (!this.adaptive) return;
    if (dropped || latencyMs > this.options.slowAfterMs) {
      this.value = Math.max(1, this.value * this.backoffRatio);
    } else if (inFlight * 2 >= this.current) {
      this.value = Math.min(this.ceiling, this.value + 1);
    }
  }

  /** After an outage: start again from the initial limit, so a returning participant is not hit by the old one. */
  restart(): void {
    this.value = this.adaptive ? Math.min(this.options.initial, this.ceiling) : this.ceiling;
  }
}
