import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ApiKeyRing } from './api-keys.js';
import { decideAccess, type AuthenticatedRequest } from './authenticate.js';

/**
 * Paths whose content is for operators only: the admin API and web console (with its static
 * assets), the metrics, and the OpenAPI documents. Matched case-insensitively, like Express
 * routes, and on a segment boundary (`/docs-json` belongs to `/docs`, `/administrator` is no
 * admin path).
 */
const ADMIN_SURFACE = /^\/(admin|metrics|docs)(?=$|[/.-])/i;

/**
 * Express middleware installed before anything else in main.ts. Guards only see Nest
 * controllers; pages mounted straight on Express (static files, Swagger UI) would escape them.
 * This applies the same rule, admin role required, to those paths whoever serves them.
 */
export function adminSurfaceAuth(ring: ApiKeyRing): RequestHandler {
  return (request: Request, response: Response, next: NextFunction): void => {
    if (!ring.enabled || !ADMIN_SURFACE.test(request.path)) return next();
    const decision = decideAccess(ring, request.headers.authorization, ['admin']);
    if (decision.allowed) {
      (request as AuthenticatedRequest).apiKey = decision.key;
      return next();
    }
    const { body, challenge } = decision.refusal;
    if (challenge) response.setHeader('WWW-Authenticate', challenge);
    response.status(body.statusCode).json(body);
  };
}
