import 'reflect-metadata';
import { ValidationPipe, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { connectParticipantTransport } from '@nest-dtx/sdk';
import { CrashAfterPhase } from './crash-hook.js';
import { loadServiceEnv, type ServiceEnv } from './service-env.js';
import { startServiceTelemetry } from './telemetry.js';

/**
 * Starts a demo participant service: validated environment, strict validation of its own API,
 * the participant transport (TCP, Redis, RabbitMQ or NATS when asked), then HTTP. Exits with one line on failure.
 */
export function runParticipantService(name: string, defaults: Partial<ServiceEnv>, module: (env: ServiceEnv) => DynamicModule): void {
  const start = async (): Promise<void> => {
    const env = loadServiceEnv(defaults);
    await startServiceTelemetry(env.PARTICIPANT_NAME);
    // rawBody: the SDK verifies each call's signature over the bytes that arrived (PROTOCOL.md 5.5).
    const app = await NestFactory.create(module(env), { logger: ['error', 'warn', 'log'], abortOnError: false, rawBody: true });
    app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
    app.enableShutdownHooks();
    if (env.CRASH_AFTER_PHASE) app.useGlobalInterceptors(new CrashAfterPhase(env.CRASH_AFTER_PHASE));
    // The transport DtxParticipantModule was given (participantInfrastructure), read from the app.
    await connectParticipantTransport(app);
    await app.listen(env.PORT, env.HOST);
  };
  start().catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${name} service failed to start: ${reason.split('\n')[0]}\n`);
    process.exit(1);
  });
}
