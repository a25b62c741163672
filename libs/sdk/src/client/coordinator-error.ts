import type { ErrorBody, ErrorCode } from '@nest-dtx/protocol';

/** An error answer of the coordinator, with its stable code (PROTOCOL.md 3). */
export class CoordinatorError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode | 'NETWORK';
  readonly body: ErrorBody | null;
  /** The answer's Retry-After, in milliseconds (503 OVERLOADED, 429 RATE_LIMITED, 503 STORE_UNAVAILABLE); null without one. */
  readonly retryAfterMs: number | null;

  constructor(statusCode: number, body: ErrorBody | null, message?: string, retryAfterMs: number | null = null) {
    super(message ?? body?.message ?? `coordinator answered ${statusCode}`);
    this.name = 'CoordinatorError';
    this.statusCode = statusCode;
    this.code = body?.error ?? 'NETWORK';
    this.body = body;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Retry-After in milliseconds: delay-seconds or an HTTP date (RFC 9110 10.2.3); null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
