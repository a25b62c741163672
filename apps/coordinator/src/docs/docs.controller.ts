import { Controller, Get, Header } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import { readOpenApiFile } from './openapi-file.js';

/**
 * GET /docs-json: the committed apps/coordinator/openapi.json, byte for byte, so that what a
 * client downloads is what the package ships and what the contract test checks, whatever
 * versions of @nestjs/swagger an install resolved. Admin only (no @RequireRole: the default).
 */
@ApiTags('operations')
@Controller('docs-json')
export class DocsController {
  private document: Buffer | undefined;

  @Get()
  @Header('content-type', 'application/json; charset=utf-8')
  @ApiOperation({ summary: 'This OpenAPI document', description: 'The committed document the package ships, byte for byte.' })
  @ApiProduces('application/json')
  @ApiResponse({ status: 200, description: 'The OpenAPI 3.1 document.', schema: { type: 'object', maxProperties: 16 } })
  read(): Buffer {
    this.document ??= readOpenApiFile();
    return this.document;
  }
}
