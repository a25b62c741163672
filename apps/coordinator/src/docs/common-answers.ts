import { ErrorCode } from '@nest-dtx/protocol';
import type { ApiRole } from '../auth/api-keys.js';

/**
 * What the document knows about one route, read from the same metadata the server acts on:
 * the roles ApiKeyGuard requires (or @Public), whether ClientRateLimitGuard guards it, whether it
 * touches Postgres, and its method and parameters.
 */
export interface RouteTraits {
  method: string;
  /** null: @Public(), no key needed even when keys are configured. */
  roles: readonly ApiRole[] | null;
  rateLimited: boolean;
  storeBacked: boolean;
  /** Admission control may refuse it before anything is written (503 OVERLOADED): begin. */
  admissionControlled: boolean;
  /** Path or query parameters, each validated (400 VALIDATION_FAILED naming it). */
  hasParameters: boolean;
}

/** A response header as the document states it. */
export interface DocumentedHeader {
  description: string;
  schema: Record<string, unknown>;
}

/** An error status that every route of some kind can answer, whatever the route itself does. */
export interface CommonAnswer {
  status: number;
  codes: readonly ErrorCode[];
  why: string;
  when: (route: RouteTraits) => boolean;
  headers?: Record<string, DocumentedHeader>;
}

/** Fastify reads (and parses, for application/json) the body of these methods; it ignores GET's. */
const takesBody = (route: RouteTraits): boolean => route.method !== 'get' && route.method !== 'head';
const secured = (route: RouteTraits): boolean => route.roles !== null;

const SECONDS = { type: 'integer', format: 'int32', minimum: 1, maximum: 3600 } as const;

export const RETRY_AFTER: DocumentedHeader = { description: 'Seconds to wait before sending the same request again.', schema: SECONDS };

/** The headers ClientRateLimitGuard sets on every answer it lets through (when RATE_LIMIT_PER_MINUTE is set). */
export const RATE_LIMIT_HEADERS: Record<string, DocumentedHeader> = {
  'X-RateLimit-Limit': {
    description: 'Requests allowed per minute to the client API for this key (or address); sent when RATE_LIMIT_PER_MINUTE is set.',
    schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 2147483647 },
  },
  'X-RateLimit-Remaining': {
    description: 'Requests left in the sliding minute.',
    schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 2147483647 },
  },
  'X-RateLimit-Reset': { description: 'Seconds until a request frees up.', schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 60 } },
};

/**
 * The one table of the error answers routes do not declare themselves: each row says which
 * routes can send that status and with which codes. A route's own declaration (ApiErrors) of
 * the same status adds its codes to the row's. Add a row here when the server learns a new
 * answer that applies across routes (a 405 for a wrong method, a 415 for a body that is not
 * JSON, a 429 for refused keys…), and the document and its contract test follow.
 */
export const COMMON_ANSWERS: readonly CommonAnswer[] = [
  {
    status: 400,
    codes: [ErrorCode.INVALID_JSON],
    why: 'the body is not JSON, or is JSON whose top level is not an object or an array',
    when: takesBody,
  },
  {
    status: 400,
    codes: [ErrorCode.VALIDATION_FAILED],
    why: 'bad input (a body field, a path or query parameter, a body nested deeper than 64 levels); `field` names it',
    when: (route) => takesBody(route) || route.hasParameters,
  },
  {
    status: 401,
    codes: [ErrorCode.UNAUTHENTICATED],
    why: 'API keys are configured and the key is missing, unknown or malformed, or Basic credentials came without x-dtx-console-token on a method other than GET or HEAD',
    when: secured,
    headers: {
      'WWW-Authenticate': {
        description: '`Bearer realm="nest-dtx"`, or `Basic realm="nest-dtx admin", charset="UTF-8"` on admin-only routes (a browser then prompts).',
        schema: { type: 'string', maxLength: 64 },
      },
    },
  },
  { status: 403, codes: [ErrorCode.FORBIDDEN], why: 'the key holds none of the roles this route needs', when: secured },
  {
    status: 403,
    codes: [ErrorCode.CROSS_SITE_REQUEST],
    why: "a browser sent it from another site's page (Sec-Fetch-Site cross-site or same-site, or an Origin other than this coordinator's)",
    when: takesBody,
  },
  { status: 413, codes: [ErrorCode.PAYLOAD_TOO_LARGE], why: 'the body is larger than 1 MiB', when: takesBody },
  {
    status: 415,
    codes: [ErrorCode.UNSUPPORTED_MEDIA_TYPE],
    why: 'a body that is not application/json (judged by its headers, before it is read), or JSON in a charset other than UTF-8, or with a Content-Encoding',
    when: () => true,
  },
  {
    status: 429,
    codes: [ErrorCode.RATE_LIMITED],
    why: 'more client API requests in a minute than RATE_LIMIT_PER_MINUTE allows for this key (or address)',
    when: (route) => route.rateLimited,
    headers: { 'Retry-After': RETRY_AFTER },
  },
  {
    status: 429,
    codes: [ErrorCode.RATE_LIMITED],
    why: 'more requests refused 401 from this address in a minute than AUTH_FAILURE_LIMIT_PER_MINUTE allows',
    when: secured,
    headers: { 'Retry-After': RETRY_AFTER },
  },
  { status: 500, codes: [ErrorCode.INTERNAL], why: 'a bug of the coordinator (it logs the cause)', when: () => true },
  {
    status: 503,
    codes: [ErrorCode.STORE_UNAVAILABLE],
    why: 'the connection to Postgres was lost while answering; nothing undurable was decided: send the same request again',
    when: (route) => route.storeBacked,
    headers: { 'Retry-After': RETRY_AFTER },
  },
  {
    status: 503,
    codes: [ErrorCode.OVERLOADED],
    why:
      'admission control: a participant it names has ADMISSION_QUEUE_LIMIT calls waiting on this instance (or enough to make a new call wait over half CALL_TIMEOUT_MS), ' +
      'or its circuit breaker is open, or this instance has ADMISSION_BACKLOG_LIMIT waiting in all; ' +
      'nothing was written: send the same request again after Retry-After seconds (also the body\'s `retryAfterSeconds`, 1 to 30)',
    when: (route) => route.admissionControlled,
    headers: { 'Retry-After': RETRY_AFTER },
  },
];
