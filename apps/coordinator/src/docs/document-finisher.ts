import type { INestApplication, Type } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA } from '@nestjs/common/constants.js';
import { RequestMethod } from '@nestjs/common';
import { ModulesContainer, Reflector } from '@nestjs/core';
import type { OpenAPIObject } from '@nestjs/swagger';
import { ErrorCode } from '@nest-dtx/protocol';
import { API_ROLES, type ApiRole } from '../auth/api-keys.js';
import { ClientRateLimitGuard } from '../auth/client-rate-limit.js';
import { routeAccess } from '../auth/roles.decorator.js';
import { AdmissionControlled, RouteErrors, StoreBacked, type DocumentedError } from './api-responses.js';
import { ANY_JSON_MARK } from './view-schemas.js';
import { COMMON_ANSWERS, RATE_LIMIT_HEADERS, type DocumentedHeader, type RouteTraits } from './common-answers.js';

/** One security scheme per role (all of them `Authorization: Bearer <key>`): `clientKey`, `participantKey`, `metricsKey`, `adminKey`. */
export const securitySchemeOf = (role: ApiRole): string => `${role}Key`;

type Schema = Record<string, unknown>;
export interface Operation {
  operationId?: string;
  parameters?: unknown[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema?: Schema }> }>;
  security?: Record<string, string[]>[];
}

/** One controller method as the document knows it: its traits and its own error answers, by operationId. */
export interface DocumentedRoute {
  operationId: string;
  access: ReturnType<typeof routeAccess>;
  rateLimited: boolean;
  storeBacked: boolean;
  admissionControlled: boolean;
  errors: readonly DocumentedError[];
}

/** Every route of the application, read from the same decorators the guards and pipes act on. */
export function routesOf(app: INestApplication): Map<string, DocumentedRoute> {
  const reflector = new Reflector();
  const routes = new Map<string, DocumentedRoute>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as Type | null;
      if (!controller) continue;
      const prototype = controller.prototype as Record<string, unknown>;
      for (const name of Object.getOwnPropertyNames(prototype)) {
        const handler = prototype[name];
        if (name === 'constructor' || typeof handler !== 'function' || Reflect.getMetadata(METHOD_METADATA, handler) === undefined) continue;
        const guards = [...((Reflect.getMetadata(GUARDS_METADATA, controller) as unknown[]) ?? []), ...((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[]) ?? [])];
        routes.set(`${controller.name}_${name}`, {
          operationId: `${controller.name}_${name}`,
          access: routeAccess(reflector, handler, controller),
          rateLimited: guards.includes(ClientRateLimitGuard),
          storeBacked: reflector.getAllAndOverride(StoreBacked, [handler, controller]) === true,
          admissionControlled: reflector.get(AdmissionControlled, handler) === true,
          errors: reflector.get(RouteErrors, handler) ?? [],
        });
      }
    }
  }
  return routes;
}

const METHODS = Object.values(RequestMethod).filter((m): m is string => typeof m === 'string').map((m) => m.toLowerCase());

/**
 * Turns what @nestjs/swagger generated into the document the server lives up to: security per
 * route and role, every error answer from COMMON_ANSWERS and the routes' own ApiErrors, the
 * rate-limit headers, any-JSON fields, closed request bodies (the ValidationPipe refuses
 * unknown fields), and responses in status order.
 */
export function finishDocument(document: OpenAPIObject, routes: Map<string, DocumentedRoute>, extraPaths: Record<string, Record<string, Operation>>): OpenAPIObject {
  const paths = document.paths as unknown as Record<string, Record<string, Operation>>;
  Object.assign(paths, extraPaths);
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const route = operation.operationId ? routes.get(operation.operationId) : undefined;
      if (!route) throw new Error(`no route found for ${method.toUpperCase()} ${path} (${operation.operationId ?? 'no operationId'})`);
      finishOperation(operation, method, route);
    }
  }
  anyJsonValues(document);
  closeRequestBodies(document);
  document.components = { ...document.components, headers: commonHeaders(), securitySchemes: securitySchemes() };
  return document;
}

function finishOperation(operation: Operation, method: string, route: DocumentedRoute): void {
  const traits: RouteTraits = {
    method,
    roles: route.access.public ? null : route.access.roles,
    rateLimited: route.rateLimited,
    storeBacked: route.storeBacked,
    admissionControlled: route.admissionControlled,
    hasParameters: (operation.parameters ?? []).length > 0,
  };
  operation.security = securityOf(traits.roles);

  // Every error answer comes from the table and the route's ApiErrors, none from elsewhere.
  const errors = new Map<number, { codes: Set<ErrorCode>; why: string[]; headers: Record<string, unknown> }>();
  const add = (status: number, codes: readonly ErrorCode[], why: string | undefined, headers: Record<string, unknown> = {}): void => {
    const entry = errors.get(status) ?? { codes: new Set(), why: [], headers: {} };
    for (const code of codes) entry.codes.add(code);
    if (why) entry.why.push(`${codes.join(' | ')}: ${why}`);
    else entry.why.push(codes.join(' | '));
    Object.assign(entry.headers, headers);
    errors.set(status, entry);
  };
  for (const error of route.errors) add(error.status, error.codes, error.why);
  for (const answer of COMMON_ANSWERS) if (answer.when(traits)) add(answer.status, answer.codes, answer.why, headerRefs(answer.headers ?? {}));

  const responses: Operation['responses'] = {};
  for (const [status, response] of Object.entries(operation.responses)) if (Number(status) < 400) responses[status] = response;
  for (const [status, { codes, why, headers }] of errors) {
    responses[String(status)] = {
      description: why.join('; '),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      content: { 'application/json': { schema: errorBodyWith([...codes]) } },
    };
  }
  if (route.rateLimited) {
    // Set by ClientRateLimitGuard, which runs after the key check and before the route.
    for (const [status, response] of Object.entries(responses)) {
      if (status.startsWith('2') || ['400', '404', '409'].includes(status)) response.headers = { ...headerRefs(RATE_LIMIT_HEADERS), ...response.headers };
    }
  }
  operation.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b)));
}

/**
 * Security per route: one alternative per role that may call it (a key with any one of them
 * will do). An admin key may call every route, which adminKey's description says, so adminKey
 * is listed only where admin alone is accepted: operators' routes stay told apart from the
 * others. @Public routes: `[]`.
 */
export function securityOf(roles: readonly ApiRole[] | null): Record<string, string[]>[] {
  if (roles === null) return [];
  const named = roles.filter((role) => role !== 'admin');
  return (named.length > 0 ? named : (['admin'] as const)).map((role) => ({ [securitySchemeOf(role)]: [] }));
}

/** The security schemes, one per role. */
export function securitySchemes(): Record<string, { type: 'http'; scheme: 'bearer'; description: string }> {
  const what: Record<ApiRole, string> = {
    client: 'drives transactions (PROTOCOL.md 3)',
    participant: 'registers participants (PROTOCOL.md 4)',
    metrics: 'reads /metrics and nothing else (a Prometheus server\'s key)',
    admin: 'operates the coordinator, and may call every route of every role',
  };
  return Object.fromEntries(
    API_ROLES.map((role) => [
      securitySchemeOf(role),
      {
        type: 'http',
        scheme: 'bearer',
        description:
          `An API key holding the ${role} role, which ${what[role]}: \`Authorization: Bearer <key>\`. ` +
          'Keys are configured with API_KEYS (`role[+role]:key`); a key may hold several roles, and an admin key is accepted wherever any role is. ' +
          'Without API_KEYS the coordinator listens on loopback only and asks for no key.' +
          (role === 'admin' ? ' Admin-only pages also take the key as the password of HTTP Basic, so a browser can log in.' : ''),
      },
    ]),
  );
}

/** Headers are written once, in components.headers, and referred to. */
function headerRefs(headers: Record<string, DocumentedHeader>): Record<string, { $ref: string }> {
  return Object.fromEntries(Object.keys(headers).map((name) => [name, { $ref: `#/components/headers/${name}` }]));
}

/** Every header a common answer refers to, for components.headers. */
export function commonHeaders(): Record<string, DocumentedHeader> {
  return Object.assign({}, RATE_LIMIT_HEADERS, ...COMMON_ANSWERS.map((answer) => answer.headers ?? {})) as Record<string, DocumentedHeader>;
}

/** The error body, its `error` one of `codes`. */
function errorBodyWith(codes: ErrorCode[]): Schema {
  return { type: 'object', allOf: [{ $ref: '#/components/schemas/ErrorBody' }], properties: { error: { enum: codes } } };
}

/** view-schemas.ts marks any-JSON fields with ANY_JSON_MARK; in JSON Schema that is the empty schema `{}` (null included). */
function anyJsonValues(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(anyJsonValues);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const schema = node as Schema;
  if (schema[ANY_JSON_MARK] === true) {
    for (const key of ['type', 'nullable', ANY_JSON_MARK]) delete schema[key];
  }
  for (const value of Object.values(schema)) anyJsonValues(value);
}

/**
 * The global ValidationPipe runs with forbidNonWhitelisted: a body with a field its DTO does
 * not declare is a 400. Every object schema with properties reachable from a request body says
 * so; open objects (payload, metadata, headers) stay open.
 */
function closeRequestBodies(document: OpenAPIObject): void {
  const schemas = (document.components?.schemas ?? {}) as Record<string, Schema>;
  const seen = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    const schema = node as Schema;
    if (typeof schema.$ref === 'string') {
      const name = schema.$ref.replace('#/components/schemas/', '');
      if (!seen.has(name) && schemas[name]) {
        seen.add(name);
        visit(schemas[name]);
      }
    }
    if (schema.type === 'object' && typeof schema.properties === 'object') schema.additionalProperties = false;
    for (const value of Object.values(schema)) visit(value);
  };
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item as Record<string, Operation>)) {
      if (typeof operation === 'object' && operation.requestBody) visit(operation.requestBody);
    }
  }
}
