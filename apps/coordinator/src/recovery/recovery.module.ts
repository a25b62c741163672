import { Module } from '@nestjs/common';
import { EngineModule } from '../engine/engine.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { OverloadModule } from '../overload/overload.module.js';
import { RecoveryService } from './recovery.service.js';

/** The recovery worker of this instance; exported for the operator's "retry now", which runs a pass at once. */
@Module({
  imports: [EngineModule, MetricsModule, OverloadModule],
  providers: [RecoveryService],
  exports: [RecoveryService],
})
export class RecoveryModule {}
