import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { ErrorBodySchema } from './view-schemas.js';
import { finishDocument, routesOf } from './document-finisher.js';
import { readOpenApiFile } from './openapi-file.js';

/** Where the API documentation is served: the UI at /docs, the OpenAPI document at /docs-json. */
export const DOCS_PATH = 'docs';

/** The Swagger UI page, served by SwaggerModule outside Nest's router: the document names it by hand. */
const DOCS_PAGE = {
  [`/${DOCS_PATH}`]: {
    get: {
      operationId: 'SwaggerUi_page',
      summary: 'This document in Swagger UI',
      description: 'An HTML page; its scripts are served from this process (no CDN).',
      tags: ['operations'],
      parameters: [],
      responses: { '200': { description: 'The page.', content: { 'text/html': {} } } },
    },
  },
};

/**
 * Builds the OpenAPI document of the coordinator from its controllers, the DTOs of
 * @nest-dtx/protocol and the views of view-schemas.ts, finished by document-finisher.ts.
 * `npm run openapi` writes it to apps/coordinator/openapi.json, which is committed: that file,
 * not this function, is what the coordinator serves and the package ships.
 */
export function createApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setOpenAPIVersion('3.1.0')
    .setTitle('nest-dtx coordinator')
    .setDescription(
      'Distributed transactions (TCC, 2PC, Saga, two-phase messages). The normative contract is PROTOCOL.md. ' +
        'JSON in and out; every error body is `{ statusCode, error: CODE, message }` (plus `field` for bad input), `CODE` one of the stable codes of ErrorBody. ' +
        'A method a path does not have is answered 405 METHOD_NOT_ALLOWED with an `Allow` header listing those it has; a path that does not exist, 404 NOT_FOUND.',
    )
    .setVersion('1')
    .addServer('/', 'This coordinator, whichever environment (local, staging, production) it runs in: the origin that serves this document.', undefined, {
      'x-internal': true,
    })
    .addTag('transactions', 'The client API (PROTOCOL.md 3)')
    .addTag('participants', 'The participant registry (PROTOCOL.md 4)')
    .addTag('admin', 'The operator API (PROTOCOL.md 6)')
    .addTag('operations', 'Health probes, metrics, the web console and this documentation')
    .build();
  const document = SwaggerModule.createDocument(app, config, { extraModels: [ErrorBodySchema] });
  const routes = routesOf(app);
  routes.set('SwaggerUi_page', { operationId: 'SwaggerUi_page', access: { public: false, roles: ['admin'] }, rateLimited: false, storeBacked: false, admissionControlled: false, errors: [] });
  return finishDocument(document, routes, DOCS_PAGE);
}

/** Serves Swagger UI at /docs, showing the committed document (DocsController serves its bytes at /docs-json). */
export function setUpApiDocs(app: INestApplication): void {
  const document = JSON.parse(readOpenApiFile().toString('utf8')) as OpenAPIObject;
  SwaggerModule.setup(DOCS_PATH, app, document, {
    // /docs-json is DocsController's: the committed file's bytes, not a serialisation of them.
    raw: false,
    // The UI's assets come from the swagger-ui-dist package, served by this process: no CDN.
    customSiteTitle: 'nest-dtx API',
  });
}
