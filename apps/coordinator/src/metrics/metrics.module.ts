import { Module } from '@nestjs/common';
import { OverloadModule } from '../overload/overload.module.js';
import { MetricsService } from './metrics.service.js';

/**
 * The one Prometheus registry of this instance (MetricsService), fed by the engine and recovery.
 * Its HTTP face, GET /metrics, is OperationsModule's.
 */
@Module({ imports: [OverloadModule], providers: [MetricsService], exports: [MetricsService] })
export class MetricsModule {}
