import { Controller, Get, Header } from '@nestjs/common';
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
  @ApiOperation({ summary: 'Prometheus metrics', description: 'The Prometheus text format, version 0.0.4.' })
  @ApiProduces('text/plain')
  @ApiResponse({ status: 200, description: 'The metrics.', content: { 'text/plain': {} } })
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
