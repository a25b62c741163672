import { Reflector } from '@nestjs/core';
import { FASTIFY_ROUTE_CONFIG_METADATA } from '@nestjs/platform-fastify/constants.js';
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

/** The Fastify route config of a @Public() route: the front door reads it before routing ends. */
export interface PublicRouteConfig {
  dtxPublic?: true;
}

/** Marks one handler public in its Fastify route config (which Nest passes to fastify.route()). */
function markPublicHandler(handler: object): void {
  const config = (Reflect.getMetadata(FASTIFY_ROUTE_CONFIG_METADATA, handler) ?? {}) as Record<string, unknown>;
  Reflect.defineMetadata(FASTIFY_ROUTE_CONFIG_METADATA, { ...config, dtxPublic: true } satisfies PublicRouteConfig, handler);
}

/**
 * Open without a key even when keys are configured (health probes of orchestrators). Two
 * marks: the Reflector metadata the guard reads, and the Fastify route config the front door
 * (auth/front-door.ts) reads in onRequest, before the body, when Nest's guards have not run yet.
 * On a class, every handler of it gets the route config (Fastify knows routes, not classes).
 */
export const Public = (): ClassDecorator & MethodDecorator =>
  ((target: object, propertyKey?: string | symbol, descriptor?: PropertyDescriptor) => {
    if (descriptor) {
      PublicRoute(true)(target, propertyKey as string | symbol, descriptor);
      if (typeof descriptor.value === 'function') markPublicHandler(descriptor.value as object);
      return descriptor;
    }
    PublicRoute(true)(target as () => void);
    const prototype = (target as { prototype: Record<string, unknown> }).prototype;
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const member: unknown = Object.getOwnPropertyDescriptor(prototype, name)?.value;
      if (name !== 'constructor' && typeof member === 'function') markPublicHandler(member);
    }
    return undefined;
  }) as ClassDecorator & MethodDecorator;

/** Routes that declare nothing are admin-only: a forgotten decorator fails closed. */
export const DEFAULT_ROLES: readonly ApiRole[] = ['admin'];

/** Who may call a route: anyone, or a key with one of `roles` (admin keys may call every route). */
export type RouteAccess = { public: true } | { public: false; roles: readonly ApiRole[] };

/**
 * The access rule of a handler of a controller, as ApiKeyGuard applies it and the OpenAPI
 * document states it: a method's decorator overrides its controller's.
 */
export function routeAccess(reflector: Reflector, handler: object, controller: object): RouteAccess {
  const targets = [handler, controller] as Parameters<Reflector['getAllAndOverride']>[1];
  if (reflector.getAllAndOverride(PublicRoute, targets)) return { public: true };
  return { public: false, roles: reflector.getAllAndOverride(RequiredRoles, targets) ?? DEFAULT_ROLES };
}
