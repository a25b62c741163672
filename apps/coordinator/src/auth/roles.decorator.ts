import { Reflector } from '@nestjs/core';
import type { ApiRole } from './api-keys.js';

/** Metadata read by ApiKeyGuard: the roles a route accepts (admin is always accepted). */
export const RequiredRoles = Reflector.createDecorator<readonly ApiRole[]>();

/** Metadata read by ApiKeyGuard: the route needs no key at all. */
export const PublicRoute = Reflector.createDecorator<true>();

/**
 * `@RequireRole('client')` on a controller or handler: a key with one of these roles (or
 * admin) may call it. Routes that say nothing are admin-only, so a route added without
 * thinking about access fails closed.
 */
export const RequireRole = (...roles: ApiRole[]): ClassDecorator & MethodDecorator => RequiredRoles(roles);

/** Any key that takes part in transactions (not a metrics-only key, which reads /metrics and nothing else). */
export const RequireAnyRole = (): ClassDecorator & MethodDecorator => RequiredRoles(['client', 'participant', 'admin']);

/** Open without a key even when keys are configured (health probes of orchestrators). */
export const Public = (): ClassDecorator & MethodDecorator => PublicRoute(true);
