import { Controller, Get, Header, Param, Sse, type MessageEvent, type StreamableFile } from '@nestjs/common';
import type { Observable } from 'rxjs';
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
@Controller('admin')
export class ConsoleController {
  constructor(
    private readonly assets: ConsoleAssets,
    private readonly feed: TransactionFeed,
  ) {}

  @Get()
  @Header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  page(): StreamableFile {
    return this.assets.file('index.html');
  }

  @Get('assets/:file')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  asset(@Param('file') file: string): StreamableFile {
    return this.assets.file(file);
  }

  @Sse('stream')
  stream(): Observable<MessageEvent> {
    return this.feed.changes();
  }
}
