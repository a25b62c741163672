import { Controller, Get, Header, Param, Req, Sse, type MessageEvent, type StreamableFile } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Observable } from 'rxjs';
import { ErrorCode } from '@nest-dtx/protocol';
import { consoleTokenOf } from '../auth/api-keys.js';
import type { AuthenticatedRequest } from '../auth/authenticate.js';
import { ApiErrors } from '../docs/api-responses.js';
import { ConsoleAssets } from './console-assets.service.js';
import { TransactionFeed } from './transaction-feed.service.js';

/**
 * The page may load only its own scripts and styles and talk only to this origin, so data
 * shown on it can never run as code even if an escaping mistake slipped in.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The operator's web console (PROTOCOL.md 6, `GET /admin`): static files, and the live feed
 * of state changes the page listens to. The data itself comes from the admin API.
 */
@ApiTags('operations')
@Controller('admin')
export class ConsoleController {
  constructor(
    private readonly assets: ConsoleAssets,
    private readonly feed: TransactionFeed,
  ) {}

  @Get()
  @ApiOperation({ summary: "The operator's web console" })
  @ApiProduces('text/html')
  @ApiResponse({ status: 200, description: 'The page.', content: { 'text/html': {} } })
  @Header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  page(): StreamableFile {
    return this.assets.file('index.html');
  }

  @Get('assets/:file')
  @ApiOperation({ summary: "A script, style sheet or image of the web console" })
  @ApiParam({ name: 'file', schema: { type: 'string', maxLength: 2048, pattern: '^[^/]+$' } })
  @ApiResponse({ status: 200, description: 'The file.', content: { 'text/html': {}, 'text/javascript': {}, 'text/css': {}, 'image/svg+xml': {} } })
  @ApiErrors({ status: 404, codes: [ErrorCode.NOT_FOUND], why: 'no console file of that name' })
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  asset(@Param('file') file: string): StreamableFile {
    return this.assets.file(file);
  }

  /**
   * The console's session token: the page sends it (x-dtx-console-token) with its POSTs, which
   * Basic credentials alone no longer authorise (auth/authenticate.ts). Derived from the key, so
   * every instance accepts it; readable by this origin's pages only (no CORS header anywhere).
   * Without API keys there is no login to protect: null.
   */
  @Get('session')
  @ApiOperation({ summary: "The console's session token, sent back in x-dtx-console-token with the console's POSTs" })
  @ApiResponse({
    status: 200,
    description: 'The token of the key this request used; null when the coordinator has no API keys.',
    schema: { type: 'object', required: ['token'], additionalProperties: false, properties: { token: { type: ['string', 'null'], maxLength: 128 } } },
  })
  @Header('Cache-Control', 'no-store')
  session(@Req() request: AuthenticatedRequest): { token: string | null } {
    return { token: request.apiKey ? consoleTokenOf(request.apiKey) : null };
  }

  @Sse('stream')
  @ApiOperation({ summary: 'Server-sent events: the state changes the console shows' })
  @ApiProduces('text/event-stream')
  @ApiResponse({ status: 200, description: 'An event stream that stays open.', content: { 'text/event-stream': {} } })
  stream(): Observable<MessageEvent> {
    return this.feed.changes();
  }
}
