import type { IncomingHttpHeaders } from 'node:http';
import { ErrorCode, type ErrorBody } from '@nest-dtx/protocol';
import { CONSOLE_TOKEN_HEADER, isConsoleTokenOf, keyMayUse, readAuthorization, type ApiKey, type ApiKeyRing, type ApiRole } from './api-keys.js';

/**
 * A request that passed the front door (auth/front-door.ts) or ApiKeyGuard carries the key it
 * used (the rate limiter buckets by it).
 */
export interface AuthenticatedRequest {
  method: string;
  headers: IncomingHttpHeaders;
  ip?: string;
  apiKey?: ApiKey;
}

/** What the access rule reads of a request. */
export type AccessRequest = Pick<AuthenticatedRequest, 'method' | 'headers'>;

/** Methods that change nothing (RFC 9110 safe methods the API serves). */
export function isSafeMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
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
 * The one access rule, shared by the front door (onRequest, every route, before the body is
 * read) and the guard (Nest routes, with their roles): a known key (401 otherwise) holding a
 * required role or admin (403 otherwise); `required` null asks only for a known key.
 * Admin-only routes challenge with Basic so a browser can log in.
 *
 * Basic credentials are the browser's: it attaches them to any request to this origin, another
 * site's form post included. So they authorise safe methods only, unless the request also
 * carries the console token (GET /admin/session), which only a page of this origin can read.
 */
export function decideAccess(ring: ApiKeyRing, request: AccessRequest, required: readonly ApiRole[] | null): AccessDecision {
  const adminOnly = required !== null && required.every((role) => role === 'admin');
  const unauthenticated = (message: string, challenge: string = adminOnly ? ADMIN_CHALLENGE : API_CHALLENGE): AccessDecision => ({
    allowed: false,
    refusal: { body: { statusCode: 401, error: ErrorCode.UNAUTHENTICATED, message }, challenge },
  });
  const credential = readAuthorization(request.headers.authorization);
  if (credential.kind === 'none') return unauthenticated('an API key is required (Authorization: Bearer <key>)');
  if (credential.kind === 'malformed') return unauthenticated(credential.reason);
  const key = ring.match(credential.key);
  if (!key) return unauthenticated('unknown API key');
  if (credential.scheme === 'basic' && request.method !== 'GET' && request.method !== 'HEAD' && !isConsoleTokenOf(key, request.headers[CONSOLE_TOKEN_HEADER])) {
    // Bearer challenge, not Basic: a browser must not answer this with its login prompt.
    return unauthenticated(
      `Basic credentials authorise ${request.method} only with the console token (${CONSOLE_TOKEN_HEADER}, from GET /admin/session); use Authorization: Bearer <key>`,
      API_CHALLENGE,
    );
  }
  return required === null ? { allowed: true, key } : authorize(key, required);
}

/** The role part of the rule (403), for a key already matched. */
export function authorize(key: ApiKey, required: readonly ApiRole[]): AccessDecision {
  if (!keyMayUse(key, required)) {
    return {
      allowed: false,
      refusal: { body: { statusCode: 403, error: ErrorCode.FORBIDDEN, message: `this route needs the ${required.join(' or ')} role` }, challenge: null },
    };
  }
  return { allowed: true, key };
}
