/**
 * Writes the coordinator's OpenAPI document to a file at build time (the package ships it as
 * `@nest-dtx/coordinator/openapi.json`), the same document GET /docs-json serves. The app is
 * created in preview mode: modules and controllers are scanned, no provider is instantiated,
 * so nothing connects to a database.
 * Usage: node dist/docs/write-openapi.js <file>
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { AppModule } from '../app.module.js';
import { createApiDocument } from './api-docs.js';

async function writeOpenApi(file: string): Promise<void> {
  const app = await NestFactory.create(AppModule, new FastifyAdapter(), { preview: true, logger: false, abortOnError: false });
  const document = createApiDocument(app);
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  await app.close();
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: write-openapi <file>\n');
  process.exit(2);
}
writeOpenApi(file).catch((error: unknown) => {
  process.stderr.write(`cannot write the OpenAPI document: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
