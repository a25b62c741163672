import { Controller, Get, Header } from '@nestjs/common';
import { RequireRole } from '../auth/roles.decorator.js';
import { ApiProduces, ApiTags } from '@nestjs/swagger';
import { MetricsService } from './metrics.service.js';

/** Prometheus scrape endpoint (README "For operators"). */
@ApiTags('operations')
@Controller('metrics')
// A Prometheus server's key needs only the metrics role (admin may too).
@RequireRole('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiProduces('text/plain')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
