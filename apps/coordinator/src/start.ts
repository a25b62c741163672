import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createCoordinatorApp } from './http-app.js';
import { CoordinatorConfig, loadCoordinatorEnv } from './config/coordinator.config.js';
import { MetricsService } from './metrics/metrics.service.js';
import { startTelemetry } from './telemetry/telemetry-sdk.js';
import { TelemetryLifecycle } from './telemetry/telemetry.module.js';

/**
 * Starts the coordinator in this process, configured from `source` (the environment, PROTOCOL.md
 * 7), and resolves once it listens. `node main.js` and `nest-dtx start` both run this.
 */
export async function startCoordinator(source: Record<string, string | undefined> = process.env): Promise<NestFastifyApplication> {
  // Validate first so bad configuration fails with one clear line before anything starts.
  const env = loadCoordinatorEnv(source);
  const app = await createCoordinatorApp(env);
  const config = app.get(CoordinatorConfig);
  // OpenTelemetry, when the standard OTEL_* variables of the process configure it
  // (docs/observability.md): started before the app listens, so before any transaction's work.
  const telemetry = await startTelemetry(process.env, app.get(MetricsService).registry);
  app.get(TelemetryLifecycle).attach(telemetry);
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
  if (telemetry) {
    const { traces, metrics } = telemetry.settings;
    Logger.log({ msg: `OpenTelemetry: traces ${traces ? 'on' : 'off'}, metrics over OTLP ${metrics ? 'on' : 'off'}`, traces, metrics }, 'Bootstrap');
  }
  return app;
}

/** A coordinator that cannot start says why in one line and exits non-zero (PROTOCOL.md 7). */
export function exitOnStartFailure(error: unknown): never {
  const reason = error instanceof Error ? error.message : String(error);
  process.stderr.write(`coordinator failed to start: ${reason.split('\n')[0]}\n`);
  process.exit(1);
}
