import { Module, type DynamicModule } from '@nestjs/common';
import { participantInfrastructure, type ServiceEnv } from '@app/demo-support';
import { Inventory1763800000400 } from './migrations/1763800000400-inventory.js';
import { OrderStock1763800000410 } from './migrations/1763800000410-order-stock.js';
import { StockEntity } from './stock/stock.entity.js';
import { StockModule } from './stock/stock.module.js';

/** The inventory service: its own database, its own migrations, and the SDK for the protocol. */
@Module({})
export class AppModule {
  static forEnv(env: ServiceEnv): DynamicModule {
    return { module: AppModule, imports: [...participantInfrastructure(env, [StockEntity], [Inventory1763800000400, OrderStock1763800000410]), StockModule] };
  }
}
