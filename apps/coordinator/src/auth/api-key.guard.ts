import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiError } from '../common/api-error.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { authorize, decideAccess, type AuthenticatedRequest } from './authenticate.js';
import { routeAccess } from './roles.decorator.js';

/**
 * The global guard (APP_GUARD): with API_KEYS configured, every route but those marked
 * @Public() needs a key with a role from @RequireRole(...). Without keys it lets everything
 * through (the coordinator then only listens on loopback; see loadCoordinatorEnv).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly config: CoordinatorConfig,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const ring = this.config.apiKeys;
    // The coordinator serves only HTTP (its TCP and Redis clients call out), so only HTTP is guarded.
    if (!ring.enabled || context.getType() !== 'http') return true;
    const access = routeAccess(this.reflector, context.getHandler(), context.getClass());
    if (access.public) return true;
    const required = access.roles;
    const http = context.switchToHttp();
    const request = http.getRequest<AuthenticatedRequest>();
    // The front door (onRequest) has already authenticated the request; only the role is left.
    const decision = request.apiKey ? authorize(request.apiKey, required) : decideAccess(ring, request, required);
    if (!decision.allowed) {
      const { body, challenge } = decision.refusal;
      if (challenge) http.getResponse<{ header(name: string, value: string): unknown }>().header('WWW-Authenticate', challenge);
      throw new ApiError(body.statusCode, body.error, body.message);
    }
    request.apiKey = decision.key;
    return true;
  }
}

