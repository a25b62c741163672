import { Controller, Get, Header } from '@nestjs/common';
import { RequireRole } from '../auth/roles.decorator.js';
import { MetricsService } from './metrics.service.js';

@Controller('metrics')
@RequireRole('admin')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
