import { Injectable, Module, type CanActivate, type DynamicModule, type ExecutionContext, type OnApplicationShutdown } from '@nestjs/common';
import { ErrorCode } from '@nest-dtx/protocol';
import { ApiError } from '../common/api-error.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import type { AuthenticatedRequest } from './authenticate.js';

/**
 * Who a client API request counts against: its API key (by id, never the secret) when it
 * carries one, else its address. ApiKeyGuard runs first (global guards precede controller
 * guards), so the key is already known here.
 */
export function rateLimitTracker(request: Record<string, unknown>): string {
  const { apiKey, ip } = request as Partial<AuthenticatedRequest>;
  return apiKey ? apiKey.id : `ip:${ip ?? 'unknown'}`;
}

/** The window is one minute of 60 one-second slots. */
const SLOTS = 60;
const SLOT_MS = 1_000;

/** One caller's hits in the last minute, per second; `total` is their sum. */
interface Bucket {
  counts: Uint32Array;
  total: number;
  /** The latest slot (seconds since the epoch) counted in `counts`. */
  slot: number;
}

export type RateDecision =
  | { allowed: true; limit: number; remaining: number; resetSeconds: number }
  | { allowed: false; limit: number; retryAfterSeconds: number };

/**
 * A sliding one-minute window per caller, kept as 60 one-second counters: a hit counts until
 * the minute after its second has passed. Constant work per request whatever the limit and the
 * traffic (only a refusal looks at the 60 counters, to say when a hit frees up), and 240 bytes
 * per caller seen in the last minute; idle callers are swept once a minute.
 */
export class ClientRateLimiter implements OnApplicationShutdown {
  private readonly buckets = new Map<string, Bucket>();
  private sweeper: NodeJS.Timeout | undefined;

  /** `limit` requests per minute; 0 switches the limit off. */
  constructor(readonly limit: number) {}

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** Counts one request of `tracker` at `now` (ms), unless it is over the limit. */
  hit(tracker: string, now: number = performance.now()): RateDecision {
    const slot = Math.floor(now / SLOT_MS);
    let bucket = this.buckets.get(tracker);
    if (bucket === undefined) {
      bucket = { counts: new Uint32Array(SLOTS), total: 0, slot };
      this.buckets.set(tracker, bucket);
      this.sweeper ??= setInterval(() => this.sweep(), SLOTS * SLOT_MS).unref();
    } else {
      advance(bucket, slot);
    }
    if (bucket.total >= this.limit) {
      return { allowed: false, limit: this.limit, retryAfterSeconds: secondsUntilFreed(bucket, bucket.total - this.limit + 1, now) };
    }
    bucket.counts[slot % SLOTS] += 1;
    bucket.total += 1;
    return { allowed: true, limit: this.limit, remaining: this.limit - bucket.total, resetSeconds: secondsUntilFreed(bucket, 1, now) };
  }

  /** Forgets callers with nothing left in the window. */
  sweep(now: number = performance.now()): void {
    const slot = Math.floor(now / SLOT_MS);
    for (const [tracker, bucket] of this.buckets) if (slot - bucket.slot >= SLOTS) this.buckets.delete(tracker);
  }

  /** Callers currently tracked (for tests). */
  get size(): number {
    return this.buckets.size;
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.buckets.clear();
  }
}

/** Moves the window to end at `slot`, dropping the seconds that left it. */
function advance(bucket: Bucket, slot: number): void {
  const passed = slot - bucket.slot;
  if (passed <= 0) return;
  if (passed >= SLOTS) {
    bucket.counts.fill(0);
    bucket.total = 0;
  } else {
    for (let s = bucket.slot + 1; s <= slot; s++) {
      bucket.total -= bucket.counts[s % SLOTS];
      bucket.counts[s % SLOTS] = 0;
    }
  }
  bucket.slot = slot;
}

/** Seconds (1 to 60) until `count` of the counted hits have left the window, oldest first. */
function secondsUntilFreed(bucket: Bucket, count: number, now: number): number {
  let freed = 0;
  for (let s = bucket.slot - SLOTS + 1; s <= bucket.slot; s++) {
    freed += bucket.counts[s % SLOTS];
    if (freed >= count) return Math.min(SLOTS, Math.max(1, Math.ceil(((s + SLOTS) * SLOT_MS - now) / 1000)));
  }
  return SLOTS;
}

/** What the guard needs of Express's response and Fastify's reply alike. */
interface HeaderSetter {
  header(name: string, value: string): unknown;
}

/**
 * The client API's rate limit: RATE_LIMIT_PER_MINUTE requests per key (or address) per
 * minute, one budget shared by every /v1/transactions route, counted per coordinator
 * instance; 0 switches it off. Applied with @UseGuards(ClientRateLimitGuard) on that
 * controller; a refusal is 429 RATE_LIMITED with Retry-After (seconds).
 */
@Injectable()
export class ClientRateLimitGuard implements CanActivate {
  constructor(private readonly limiter: ClientRateLimiter) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.limiter.enabled) return true;
    const http = context.switchToHttp();
    const decision = this.limiter.hit(rateLimitTracker(http.getRequest<Record<string, unknown>>()));
    const response = http.getResponse<HeaderSetter>();
    if (!decision.allowed) {
      response.header('Retry-After', String(decision.retryAfterSeconds));
      throw new ApiError(
        429,
        ErrorCode.RATE_LIMITED,
        `more than ${decision.limit} client API requests in a minute; retry after ${decision.retryAfterSeconds} s`,
      );
    }
    response.header('X-RateLimit-Limit', String(decision.limit));
    response.header('X-RateLimit-Remaining', String(decision.remaining));
    response.header('X-RateLimit-Reset', String(decision.resetSeconds));
    return true;
  }
}

@Module({})
class ClientRateLimitModule {}

/** Provides the one ClientRateLimiter of this instance, sized by RATE_LIMIT_PER_MINUTE. */
export function clientRateLimitModule(): DynamicModule {
  return {
    module: ClientRateLimitModule,
    providers: [{ provide: ClientRateLimiter, inject: [CoordinatorConfig], useFactory: (config: CoordinatorConfig) => new ClientRateLimiter(config.rateLimitPerMinute) }],
    exports: [ClientRateLimiter],
  };
}
