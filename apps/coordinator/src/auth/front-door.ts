import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ErrorCode, type ErrorBody } from '@nest-dtx/protocol';
import type { ApiKeyRing, ApiRole } from './api-keys.js';
import { decideAccess, type AuthenticatedRequest } from './authenticate.js';
import { crossSiteReason } from './cross-site.js';
import type { ClientRateLimiter } from './client-rate-limit.js';
import type { PublicRouteConfig } from './roles.decorator.js';

/** A Fastify onRequest hook: it runs once the route is found, before the body is read. */
export type OnRequestHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

/**
 * Paths whose content is for operators only: the admin API and web console (with its static
 * assets), the metrics, and the OpenAPI documents. Matched case-insensitively, like the routes,
 * and on a segment boundary (`/docs-json` belongs to `/docs`, `/administrator` is no admin path).
 */
const ADMIN_SURFACE = /^\/(admin|metrics|docs)(?=$|[/.?-])/i;

const METRICS_PATH = /^\/metrics(?=$|[/.?-])/i;

/** Whether a path (decoded, or a route pattern) is on the admin surface. */
export function isAdminSurface(path: string): boolean {
  return ADMIN_SURFACE.test(path);
}

/**
 * The path a request is judged by: the pattern of the route Fastify found for it, so every
 * spelling the router accepts (`/%64ocs-json`, `/DOCS-JSON/`) is judged as the route it reaches;
 * for a request no route takes, its path percent-decoded (or as sent when it does not decode).
 */
export function judgedPath(request: Pick<FastifyRequest, 'url' | 'is404'> & { routeOptions: { url?: string } }): string {
  if (!request.is404 && request.routeOptions.url !== undefined) return request.routeOptions.url;
  const path = request.url.split('?', 1)[0];
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function send(reply: FastifyReply, body: ErrorBody, headers: Record<string, string> = {}): void {
  for (const [name, value] of Object.entries(headers)) void reply.header(name, value);
  void reply.code(body.statusCode).send(body);
}

/**
 * Refuses state-changing requests sent by another site's page (cross-site.ts), with or without
 * API keys: 403 CROSS_SITE_REQUEST before anything else runs, so a form post from a page the
 * operator happens to visit cannot use the browser's saved console login.
 */
export function refuseCrossSite(): OnRequestHook {
  return (request, reply, done) => {
    const reason = crossSiteReason(request.method, request.headers);
    if (reason === null) return done();
    send(reply, { statusCode: 403, error: ErrorCode.CROSS_SITE_REQUEST, message: reason });
  };
}

/**
 * Authenticates every request but those of @Public() routes, once the route is known and before
 * the body is read, so a request without a known key costs the same whatever it sends (installed
 * when keys are configured). Roles of Nest routes are left to ApiKeyGuard, except on the admin
 * surface, whose pages may be served outside Nest's router (Swagger UI's files): admin (or
 * metrics for /metrics) is required here, on the routed path. Refusals (401) count against the
 * client address's window (the client API's ClientRateLimiter, here counting refusals per
 * address: AUTH_FAILURE_LIMIT_PER_MINUTE); past it, 429 RATE_LIMITED with Retry-After.
 */
export function authenticateFirst(ring: ApiKeyRing, refusals: ClientRateLimiter): OnRequestHook {
  return (request, reply, done) => {
    if ((request.routeOptions.config as PublicRouteConfig | undefined)?.dtxPublic === true && !request.is404) return done();
    const path = judgedPath(request);
    const roles: readonly ApiRole[] | null = METRICS_PATH.test(path) ? ['metrics'] : ADMIN_SURFACE.test(path) ? ['admin'] : null;
    const decision = decideAccess(ring, request, roles);
    if (decision.allowed) {
      (request as AuthenticatedRequest).apiKey = decision.key;
      return done();
    }
    const { body, challenge } = decision.refusal;
    if (body.statusCode === 401) {
      const limited = refusals.enabled ? refusals.hit(`ip:${request.ip}`) : null;
      if (limited && !limited.allowed) {
        return send(
          reply,
          { statusCode: 429, error: ErrorCode.RATE_LIMITED, message: `too many refused requests from this address; retry after ${limited.retryAfterSeconds} s` },
          { 'Retry-After': String(limited.retryAfterSeconds) },
        );
      }
    }
    send(reply, body, challenge ? { 'WWW-Authenticate': challenge } : {});
  };
}
