import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { BusModule } from '../bus/bus.module.js';
import { DocsController } from '../docs/docs.controller.js';
import { MetricsController } from '../metrics/metrics.controller.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { HealthController } from './health.controller.js';

/**
 * The operations routes: health probes, GET /metrics and the OpenAPI document. (Their order here
 * and AppModule's order of modules are the order of the paths in openapi.json.)
 */
@Module({
  imports: [
    // Terminus would log every failed probe at error level: HealthController reports the
    // dependency's outage instead (one warn line an outage, logging/outage-episode.ts).
    TerminusModule.forRoot({ logger: false }),
    BusModule,
    MetricsModule,
  ],
  controllers: [HealthController, MetricsController, DocsController],
})
export class OperationsModule {}
