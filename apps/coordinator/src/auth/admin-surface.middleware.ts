import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { ApiKeyRing, ApiRole } from './api-keys.js';
import { decideAccess, type AuthenticatedRequest } from './authenticate.js';

/**
 * Paths whose content is for operators only: the admin API and web console (with its static
 * assets), the metrics, and the OpenAPI documents. Matched case-insensitively, like the routes,
 * and on a segment boundary (`/docs-json` belongs to `/docs`, `/administrator` is no admin path).
 */
const ADMIN_SURFACE = /^\/(admin|metrics|docs)(?=$|[/.?-])/i;

const METRICS_PATH = /^\/metrics(?=$|[/.?-])/i;

/** Whether a request URL (path and query) is on the admin surface. */
export function isAdminSurface(url: string): boolean {
  return ADMIN_SURFACE.test(url);
}

/**
 * A Fastify onRequest hook, installed in http-app.ts when keys are configured. Guards
 * only see Nest controllers; pages served by Fastify plugins (Swagger UI's files) would escape
 * them. This applies the same rule (admin role required; metrics or admin for /metrics) to those paths whoever serves them,
 * before the body is read.
 */
export function adminSurfaceAuth(ring: ApiKeyRing): (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void {
  return (request, reply, done) => {
    if (!ring.enabled || !ADMIN_SURFACE.test(request.url)) return done();
    // /metrics is open to the metrics role as well; the rest of the surface is admin only.
    const roles: readonly ApiRole[] = METRICS_PATH.test(request.url) ? ['metrics'] : ['admin'];
    const decision = decideAccess(ring, request.headers.authorization, roles);
    if (decision.allowed) {
      (request as unknown as AuthenticatedRequest).apiKey = decision.key;
      return done();
    }
    const { body, challenge } = decision.refusal;
    if (challenge) void reply.header('WWW-Authenticate', challenge);
    void reply.code(body.statusCode).send(body);
  };
}
