import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from '../app.module.js';
import { adminSurfaceAuth } from '../auth/admin-surface.middleware.js';
import { CoordinatorConfig, type CoordinatorEnv } from '../config/coordinator.config.js';
import { setUpApiDocs } from '../docs/api-docs.js';
import { JsonLogger } from '../logging/json-logger.js';
import { requestLogging } from '../logging/request-log.js';
import { BodyDepthPipe, createValidationPipe } from './validation.js';

/**
 * The coordinator's Nest application with its whole inbound HTTP pipeline (logging, the admin
 * surface's authentication, the body parser, validation, the API docs), not yet listening.
 */
export async function createCoordinatorApp(env: CoordinatorEnv): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    // Every line, Nest's own included, is one JSON object on stdout (README "For operators").
    logger: new JsonLogger({ level: env.LOG_LEVEL, instance: env.INSTANCE_ID }),
    bodyParser: false,
    // Let start-up errors reach the caller, which prints one line and exits non-zero.
    abortOnError: false,
  });
  const config = app.get(CoordinatorConfig);
  // Requests are logged at verbose only; below it they cost nothing, not even a listener.
  if (env.LOG_LEVEL === 'verbose') app.use(requestLogging());
  // Before the other handlers, so admin pages served outside Nest's router (static files, API
  // docs) are behind the admin key too, and unauthenticated admin requests are refused before parsing.
  app.use(adminSurfaceAuth(config.apiKeys));
  app.useBodyParser('json', { limit: '1mb' });
  app.useGlobalPipes(new BodyDepthPipe(), createValidationPipe());
  app.enableShutdownHooks();
  app.set('etag', false);
  app.disable('x-powered-by');
  setUpApiDocs(app);
  return app;
}
