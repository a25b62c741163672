import { ThrottlerModule, type ThrottlerModuleOptions } from '@nestjs/throttler';
import type { DynamicModule } from '@nestjs/common';
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

/**
 * The client API's rate limit: RATE_LIMIT_PER_MINUTE requests per key (or address) per
 * minute, one bucket shared by every /v1/transactions route, counted per coordinator
 * instance; 0 switches it off. Applied with @UseGuards(ThrottlerGuard) on that controller;
 * a refusal is a 429 with Retry-After, which HttpExceptionFilter turns into RATE_LIMITED.
 */
export function clientRateLimitModule(): DynamicModule {
  return ThrottlerModule.forRootAsync({
    inject: [CoordinatorConfig],
    useFactory: (config: CoordinatorConfig): ThrottlerModuleOptions => ({
      // Unnamed ("default"), so the header is a plain Retry-After rather than Retry-After-<name>.
      throttlers: [{ ttl: 60_000, limit: Math.max(1, config.rateLimitPerMinute) }],
      skipIf: () => config.rateLimitPerMinute === 0,
      getTracker: rateLimitTracker,
      // One bucket per caller across every route of the client API (the default is per route).
      generateKey: (_context, tracker) => `client-api:${tracker}`,
      errorMessage: (_context, detail) =>
        `more than ${detail.limit} client API requests in a minute; retry after ${detail.timeToBlockExpire} s`,
    }),
  });
}
