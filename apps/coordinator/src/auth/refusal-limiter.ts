/** One address's bucket: tokens left (fractional while refilling) as of `at` (ms). */
interface Bucket {
  tokens: number;
  at: number;
}

export type RefusalDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** Past this many tracked addresses, the sweep runs at once rather than once a minute. */
const SWEEP_AT_SIZE = 100_000;
const SWEEP_EVERY_MS = 60_000;

/**
 * A token bucket per client address for requests the front door refuses 401: `perMinute`
 * tokens, refilled continuously at `perMinute` a minute. Each refusal takes one; an address
 * with none left is answered 429 instead, until one has refilled. Requests with a valid key
 * never take a token, so a client sharing an address (a proxy, a NAT) with someone guessing
 * keys keeps working. Constant work per refusal; a full bucket is forgotten at the next sweep.
 */
export class RefusalLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly refillPerMs: number;
  private sweeper: NodeJS.Timeout | undefined;

  /** `perMinute` refusals per address per minute; 0 switches the limit off. */
  constructor(readonly perMinute: number) {
    this.refillPerMs = perMinute / 60_000;
  }

  get enabled(): boolean {
    return this.perMinute > 0;
  }

  /** Takes a token of `address` for one refusal at `now` (ms), or says when one is back. */
  take(address: string, now: number = Date.now()): RefusalDecision {
    if (!this.enabled) return { allowed: true };
    const bucket = this.buckets.get(address);
    const tokens = bucket === undefined ? this.perMinute : Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.refillPerMs);
    if (tokens < 1) {
      if (bucket) {
        bucket.tokens = tokens;
        bucket.at = now;
      }
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.refillPerMs / 1000)) };
    }
    if (bucket) {
      bucket.tokens = tokens - 1;
      bucket.at = now;
    } else {
      this.buckets.set(address, { tokens: tokens - 1, at: now });
      if (this.buckets.size >= SWEEP_AT_SIZE) this.sweep(now);
    }
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_EVERY_MS).unref();
    return { allowed: true };
  }

  /** Forgets addresses whose bucket has refilled: they are as if never seen. */
  sweep(now: number = Date.now()): void {
    for (const [address, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.refillPerMs >= this.perMinute) this.buckets.delete(address);
    }
  }

  /** Addresses currently tracked (for tests). */
  get size(): number {
    return this.buckets.size;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.buckets.clear();
  }
}
