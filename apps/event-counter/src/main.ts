import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { loadCounterEnv } from './counter-env.js';

/** Starts the event counter: validated environment, registration, schema, consumers, then HTTP. Exits with one line on failure. */
async function start(): Promise<void> {
  const env = loadCounterEnv();
  const app = await NestFactory.create(AppModule.forEnv(env), { logger: ['error', 'warn', 'log'], abortOnError: false });
  app.enableShutdownHooks();
  await app.listen(env.PORT, env.HOST);
}

start().catch((error: unknown) => {
  const reason = error instanceof Error ? error.message : String(error);
  process.stderr.write(`event-counter failed to start: ${reason.split('\n')[0]}\n`);
  process.exit(1);
});
