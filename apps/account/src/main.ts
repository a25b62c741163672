import 'reflect-metadata';
import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { connectParticipantTransport } from '@app/sdk';
import { AppModule } from './app.module.js';
import { loadAccountEnv, participantTransport } from './config.js';

async function bootstrap(): Promise<void> {
  const env = loadAccountEnv();
  const app = await NestFactory.create(AppModule.forEnv(env), { logger: ['error', 'warn', 'log'], abortOnError: false });
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.enableShutdownHooks();
  await connectParticipantTransport(app, { name: env.PARTICIPANT_NAME, coordinatorUrl: env.COORDINATOR_URL, transport: participantTransport(env) });
  await app.listen(env.PORT, env.HOST);
}

bootstrap().catch((error: unknown) => {
  const reason = error instanceof Error ? error.message : String(error);
  process.stderr.write(`account service failed to start: ${reason.split('\n')[0]}\n`);
  process.exit(1);
});
