import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

/** Where the API documentation is served: the UI at /docs, the OpenAPI document at /docs-json. */
export const DOCS_PATH = 'docs';

/**
 * The OpenAPI document of the client and admin APIs, generated from the DTOs of
 * @nest-dtx/protocol and the controllers' decorators; docs/protocol.md stays the normative text.
 */
export function createApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('nest-dtx coordinator')
    .setDescription(
      'Distributed transactions (TCC, 2PC, Saga). The normative contract is PROTOCOL.md; every error body is ' +
        '`{ statusCode, error: CODE, message }`. When API keys are configured, every request carries `Authorization: Bearer <key>`.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'API key', description: 'An API key, when the coordinator is configured with keys.' })
    .addTag('transactions', 'The client API (PROTOCOL.md 3)')
    .addTag('participants', 'The participant registry (PROTOCOL.md 4)')
    .addTag('admin', 'The operator API (PROTOCOL.md 6)')
    .build();
  return SwaggerModule.createDocument(app, config);
}

/** Serves the document and its UI. */
export function setUpApiDocs(app: INestApplication): void {
  // A factory: the document is built on the first request, not at every start-up.
  SwaggerModule.setup(DOCS_PATH, app, () => createApiDocument(app), {
    jsonDocumentUrl: `${DOCS_PATH}-json`,
    // The UI's assets come from the swagger-ui-dist package, served by this process: no CDN.
    customSiteTitle: 'nest-dtx API',
  });
}
