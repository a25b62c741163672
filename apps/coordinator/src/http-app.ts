import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { AppModule } from './app.module.js';
import { adminSurfaceAuth } from './auth/admin-surface.middleware.js';
import { CoordinatorConfig, type CoordinatorEnv } from './config/coordinator.config.js';
import { setUpApiDocs } from './docs/api-docs.js';
import { JsonLogger } from './logging/json-logger.js';
import { requestLogging } from './logging/request-log.js';
import { BODY_LIMIT_BYTES, frameworkErrorAnswer, registerBodyParsers } from './common/http-body.js';
import { BodyDepthPipe, createValidationPipe } from './common/validation.js';

/**
 * The coordinator's Nest application with its whole inbound HTTP pipeline (logging, the admin
 * surface's authentication, the body parser, validation, the API docs), not yet listening.
 *
 * Fastify rather than Express: the same app costs about half the CPU per request on it (the
 * figures are in the commit that switched). Routing is kept as Express did it: paths match
 * case-insensitively and with or without a trailing slash; no ETag, no X-Powered-By.
 */
export async function createCoordinatorApp(env: CoordinatorEnv): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: {
      caseSensitive: false,
      ignoreTrailingSlash: true,
      // gids are up to 128 characters, percent-encoded up to 3 times that: longer ones reach
      // GidPipe's 400 rather than find-my-way's silent 404.
      maxParamLength: 2048,
    },
    frameworkErrors: frameworkErrorAnswer,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, {
    // Every line, Nest's own included, is one JSON object on stdout (README "For operators").
    logger: new JsonLogger({ level: env.LOG_LEVEL, instance: env.INSTANCE_ID }),
    bodyParser: false,
    // Let start-up errors reach the caller, which prints one line and exits non-zero.
    abortOnError: false,
  });
  const config = app.get(CoordinatorConfig);
  const fastify: FastifyInstance = app.getHttpAdapter().getInstance();
  // Requests are logged at verbose only; below it they cost nothing, not even a hook.
  if (env.LOG_LEVEL === 'verbose') requestLogging(fastify);
  // onRequest, before routing and parsing, so admin pages served outside Nest's router (static
  // files, API docs) are behind the admin key too, and unauthenticated admin requests are
  // refused before their body is read. Without keys there is no hook at all.
  if (config.apiKeys.enabled) fastify.addHook('onRequest', adminSurfaceAuth(config.apiKeys));
  registerBodyParsers(fastify);
  app.useGlobalPipes(new BodyDepthPipe(), createValidationPipe());
  app.enableShutdownHooks();
  setUpApiDocs(app);
  return app;
}
