import type { IncomingHttpHeaders } from 'node:http';
import { ErrorCode, type ErrorBody } from '@nest-dtx/protocol';
import { keyMayUse, readAuthorization, type ApiKey, type ApiKeyRing, type ApiRole } from './api-keys.js';

/** A request that passed ApiKeyGuard carries the key it used (the rate limiter buckets by it). */
export interface AuthenticatedRequest {
  headers: IncomingHttpHeaders;
  ip?: string;
  apiKey?: ApiKey;
}

/** Browsers show their own login prompt for this challenge, which is how the web console logs in. */
export const ADMIN_CHALLENGE = 'Basic realm="nest-dtx admin", charset="UTF-8"';
const API_CHALLENGE = 'Bearer realm="nest-dtx"';

/** Why a request was refused: the error body, and for a 401 the WWW-Authenticate challenge. */
export interface AccessRefusal {
  body: ErrorBody;
  challenge: string | null;
}

export type AccessDecision = { allowed: true; key: ApiKey } | { allowed: false; refusal: AccessRefusal };

/**
 * The one access rule, shared by the guard (Nest routes) and the admin-surface middleware
 * (pages served outside Nest's router): a known key (401 otherwise) holding a required role
 * or admin (403 otherwise). Admin-only routes challenge with Basic so a browser can log in.
 */
export function decideAccess(ring: ApiKeyRing, authorization: string | string[] | undefined, required: readonly ApiRole[]): AccessDecision {
  const adminOnly = required.every((role) => role === 'admin');
  const unauthenticated = (message: string): AccessDecision => ({
    allowed: false,
    refusal: { body: { statusCode: 401, error: ErrorCode.UNAUTHENTICATED, message }, challenge: adminOnly ? ADMIN_CHALLENGE : API_CHALLENGE },
  });
  const credential = readAuthorization(authorization);
  if (credential.kind === 'none') return unauthenticated('an API key is required (Authorization: Bearer <key>)');
  if (credential.kind === 'malformed') return unauthenticated(credential.reason);
  const key = ring.match(credential.key);
  if (!key) return unauthenticated('unknown API key');
  if (!keyMayUse(key, required)) {
    return {
      allowed: false,
      refusal: { body: { statusCode: 403, error: ErrorCode.FORBIDDEN, message: `this route needs the ${required.join(' or ')} role` }, challenge: null },
    };
  }
  return { allowed: true, key };
}
