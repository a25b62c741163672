/**
 * `npm run openapi`: writes the coordinator's OpenAPI document to apps/coordinator/openapi.json,
 * which is committed. That file is the one source: the coordinator serves its bytes at
 * /docs-json, the package ships it, and test/e2e/openapi-document.e2e.test.ts checks that this
 * script, run from the code under the lockfile's versions, writes the same bytes. The app is
 * created in preview mode: modules and controllers are scanned, no provider is instantiated,
 * so nothing connects to a database.
 * Usage: node dist/apps/coordinator/src/docs/write-openapi.js <file>
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
