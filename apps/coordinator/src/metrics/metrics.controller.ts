import { Controller, Get, Headers, Res } from '@nestjs/common';
import { RequireRole } from '../auth/roles.decorator.js';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiStoreBacked } from '../docs/api-responses.js';
import { MetricsService } from './metrics.service.js';

/** Prometheus scrape endpoint (docs/operations.md "Metrics"). */
@ApiTags('operations')
@Controller('metrics')
// A Prometheus server's key needs only the metrics role (admin may too).
@RequireRole('metrics')
// The gauges of what is in doubt are read from Postgres at scrape time.
@ApiStoreBacked()
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics',
    description:
      'The Prometheus text format, version 0.0.4; OpenMetrics 1.0.0, with exemplars (the trace of a phase call on its latency bucket), ' +
      'when Accept asks for application/openmetrics-text as Prometheus does.',
  })
  @ApiProduces('text/plain', 'application/openmetrics-text')
  @ApiResponse({ status: 200, description: 'The metrics.', content: { 'text/plain': {}, 'application/openmetrics-text': {} } })
  async scrape(
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) res: { header(name: string, value: string): unknown },
  ): Promise<string> {
    const { contentType, body } = await this.metrics.scrape(accept);
    res.header('content-type', contentType);
    // The body depends on Accept: a cache must not answer one scraper with the other's format.
    res.header('vary', 'accept');
    return body;
  }
}
