import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { adminSurfaceAuth } from './auth/admin-surface.middleware.js';
import { BodyDepthPipe, createValidationPipe } from './common/validation.js';
import { CoordinatorConfig, loadCoordinatorEnv } from './config/coordinator.config.js';
import { setUpApiDocs } from './docs/api-docs.js';
import { JsonLogger } from './logging/json-logger.js';
import { requestLogging } from './logging/request-log.js';

async function bootstrap(): Promise<void> {
  // Validate first so bad configuration fails with one clear line before anything starts.
  const env = loadCoordinatorEnv();
  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    // Every line, Nest's own included, is one JSON object on stdout (README "For operators").
    logger: new JsonLogger({ level: env.LOG_LEVEL, instance: env.INSTANCE_ID }),
    bodyParser: false,
    // Let start-up errors reach the catch below, which prints one line and exits non-zero.
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
  await app.listen(config.port, config.host);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  Logger.log(
    {
      msg: `coordinator ${config.instanceId} listening on http://${config.host}:${port} (${config.redisUrl ? 'Redis bus' : 'in-process bus, single instance'})`,
      port,
      bus: config.redisUrl ? 'redis' : 'in-process',
    },
    'Bootstrap',
  );
  Logger.log(
    config.apiKeys.enabled
      ? `API keys: ${config.apiKeys.size} configured; every route but /health/live and /health/ready needs one`
      : `API keys: none configured, so no authentication; listening on loopback (${config.host}) only`,
    'Bootstrap',
  );
}

bootstrap().catch((error: unknown) => {
  const reason = error instanceof Error ? error.message : String(error);
  process.stderr.write(`coordinator failed to start: ${reason.split('\n')[0]}\n`);
  process.exit(1);
});
