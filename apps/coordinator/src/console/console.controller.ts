import { Controller, Get, Header, Param, Req, Sse, type MessageEvent, type StreamableFile } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { consoleTokenOf } from '../auth/api-keys.js';
import type { AuthenticatedRequest } from '../auth/authenticate.js';
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

  /**
   * The console's session token: the page sends it (x-dtx-console-token) with its POSTs, which
   * Basic credentials alone no longer authorise (auth/authenticate.ts). Derived from the key, so
   * every instance accepts it; readable by this origin's pages only (no CORS header anywhere).
   * Without API keys there is no login to protect: null.
   */
  @Get('session')
  @Header('Cache-Control', 'no-store')
  session(@Req() request: AuthenticatedRequest): { token: string | null } {
    return { token: request.apiKey ? consoleTokenOf(request.apiKey) : null };
  }

  @Sse('stream')
  stream(): Observable<MessageEvent> {
    return this.feed.changes();
  }
}
