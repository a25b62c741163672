import { Module } from '@nestjs/common';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { DependencyOutages } from '../logging/dependency-outages.js';
import { InProcessTxEventBus, RedisTxEventBus, TxEventBus } from './tx-event-bus.js';

/** The one TxEventBus of this instance: Redis pub/sub when REDIS_URL is set, this process otherwise. */
@Module({
  providers: [
    {
      provide: TxEventBus,
      inject: [CoordinatorConfig, DependencyOutages],
      useFactory: (config: CoordinatorConfig, outages: DependencyOutages): TxEventBus =>
        config.redisUrl ? new RedisTxEventBus(config.redisUrl, outages.redis) : new InProcessTxEventBus(),
    },
  ],
  exports: [TxEventBus],
})
export class BusModule {}
