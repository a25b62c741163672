import { Controller, Get, Post, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../common/api-error.js';
import { CoordinatorConfig, loadCoordinatorEnv } from '../config/coordinator.config.js';
import { ApiKeyGuard } from './api-key.guard.js';
import type { AuthenticatedRequest } from './authenticate.js';
import { Public, RequireAnyRole, RequireRole } from './roles.decorator.js';

const KEYS = { admin: 'admin-key-0123456789', client: 'client-key-0123456789', participant: 'participant-key-0123' };

@Controller('clients')
@RequireRole('client')
class ClientRoutes {
  @Get() read(): void {}
}

@Controller('mixed')
@RequireRole('participant')
class MixedRoutes {
  @Post() register(): void {}
  @Get() @RequireAnyRole() list(): void {}
}

@Controller('health')
@Public()
class OpenRoutes {
  @Get() live(): void {}
}

@Controller('forgotten')
class UndecoratedRoutes {
  @Get() page(): void {}
}

function guard(env: Record<string, string>): ApiKeyGuard {
  return new ApiKeyGuard(new Reflector(), new CoordinatorConfig(loadCoordinatorEnv(env)));
}
const withKeys = guard({ API_KEYS: `admin:${KEYS.admin},client:${KEYS.client},participant:${KEYS.participant}` });

/** Runs the guard as Nest would for `controller.method`, with `key` as Bearer; the HTTP status it answers. */
function statusFor<T extends object>(subject: ApiKeyGuard, controller: Type<T>, method: keyof T & string, key?: keyof typeof KEYS): number {
  const request: AuthenticatedRequest = { method: 'GET', headers: key ? { authorization: `Bearer ${KEYS[key]}` } : {} };
  const response = { header: () => undefined };
  const handler = controller.prototype[method as keyof typeof controller.prototype] as () => void;
  const context = new ExecutionContextHost([request, response], controller, handler);
  context.setType('http');
  try {
    subject.canActivate(context);
    return 200;
  } catch (error) {
    if (error instanceof ApiError) return error.getStatus();
    throw error;
  }
}

describe('ApiKeyGuard', () => {
  it('applies the class role, a method override, @Public and the admin-only default', () => {
    expect(statusFor(withKeys, ClientRoutes, 'read', 'client')).toBe(200);
    expect(statusFor(withKeys, ClientRoutes, 'read', 'participant')).toBe(403);
    expect(statusFor(withKeys, ClientRoutes, 'read')).toBe(401);
    expect(statusFor(withKeys, MixedRoutes, 'register', 'participant')).toBe(200);
    expect(statusFor(withKeys, MixedRoutes, 'register', 'client')).toBe(403);
    expect(statusFor(withKeys, MixedRoutes, 'list', 'client')).toBe(200);
    expect(statusFor(withKeys, MixedRoutes, 'list', 'participant')).toBe(200);
    expect(statusFor(withKeys, MixedRoutes, 'list')).toBe(401);
    expect(statusFor(withKeys, OpenRoutes, 'live')).toBe(200);
    expect(statusFor(withKeys, UndecoratedRoutes, 'page', 'client')).toBe(403);
    expect(statusFor(withKeys, UndecoratedRoutes, 'page', 'admin')).toBe(200);
  });

  it('lets admin through every route', () => {
    expect(statusFor(withKeys, ClientRoutes, 'read', 'admin')).toBe(200);
    expect(statusFor(withKeys, MixedRoutes, 'register', 'admin')).toBe(200);
  });

  it('lets everything through when no keys are configured', () => {
    const open = guard({});
    expect(statusFor(open, UndecoratedRoutes, 'page')).toBe(200);
    expect(statusFor(open, ClientRoutes, 'read')).toBe(200);
  });
});
