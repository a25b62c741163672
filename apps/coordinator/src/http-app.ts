import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { AppModule } from './app.module.js';
import { authenticateFirst, refuseCrossSite } from './auth/front-door.js';
import { ClientRateLimiter } from './auth/client-rate-limit.js';
import { CoordinatorConfig, httpIdleTimeoutMs, type CoordinatorEnv } from './config/coordinator.config.js';
import { setUpApiDocs } from './docs/api-docs.js';
import { JsonLogger } from './logging/json-logger.js';
import { requestLogging } from './logging/request-log.js';
import { BODY_LIMIT_BYTES, frameworkErrorAnswer, refuseNonJsonBody, registerBodyParsers } from './common/http-body.js';
import { methodNotAllowed } from './common/method-not-allowed.js';
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
    // Every connection is on a clock (docs/configuration.md): its headers, its whole request,
    // silence in either direction, and idling between requests.
    connectionTimeout: httpIdleTimeoutMs(env),
    requestTimeout: env.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: env.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    http: {
      headersTimeout: env.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: env.HTTP_REQUEST_TIMEOUT_MS,
      // Node checks the two timeouts above every 30 s by default, which would let a 1 s timeout
      // run 31 s; a quarter of the headers timeout (at most a second) keeps them close to exact.
      connectionsCheckingInterval: Math.min(1_000, Math.ceil(env.HTTP_HEADERS_TIMEOUT_MS / 4)),
    },
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
    // Every line, Nest's own included, is one JSON object on stdout (docs/operations.md "Logs").
    logger: new JsonLogger({ level: env.LOG_LEVEL, instance: env.INSTANCE_ID }),
    bodyParser: false,
    // Let start-up errors reach the caller, which prints one line and exits non-zero.
    abortOnError: false,
  });
  const config = app.get(CoordinatorConfig);
  const fastify: FastifyInstance = app.getHttpAdapter().getInstance();
  fastify.server.maxHeadersCount = env.HTTP_MAX_HEADERS;
  // Requests are logged at verbose only; below it they cost nothing, not even a hook.
  if (env.LOG_LEVEL === 'verbose') requestLogging(fastify);
  // The front door, in this order, all onRequest: after the router found the route (or none),
  // before the body is read, so what is refused here costs the same whatever its body.
  // 1. 403 CROSS_SITE_REQUEST: another site's page, with or without keys.
  fastify.addHook('onRequest', refuseCrossSite());
  // 2. 401 (429 past AUTH_FAILURE_LIMIT_PER_MINUTE): no known key, on every route but @Public()
  //    ones, Nest's or not (the API docs, static files). Without keys there is no hook at all.
  if (config.apiKeys.enabled) {
    // The client API's sliding one-minute window, counting refusals per address instead.
    const refusals = new ClientRateLimiter(config.authFailureLimitPerMinute);
    fastify.addHook('onClose', (_instance, done) => {
      refusals.onApplicationShutdown();
      done();
    });
    fastify.addHook('onRequest', authenticateFirst(config.apiKeys, refusals));
  }
  // 3. 405 with Allow: a path that exists, with another method.
  fastify.addHook('onRequest', methodNotAllowed(fastify));
  // 4. 415 UNSUPPORTED_MEDIA_TYPE: a body that is not JSON.
  fastify.addHook('onRequest', refuseNonJsonBody);
  registerBodyParsers(fastify);
  app.useGlobalPipes(new BodyDepthPipe(), createValidationPipe());
  app.enableShutdownHooks();
  setUpApiDocs(app);
  return app;
}
