import { Module, type DynamicModule } from '@nestjs/common';
import { participantInfrastructure, type ServiceEnv } from '@app/demo-support';
import { Orders1763800000300 } from './migrations/1763800000300-orders.js';
import { OrderEntity } from './orders/order.entity.js';
import { OrdersModule } from './orders/orders.module.js';

/** The order service: its own database, its own migrations, and the SDK for the protocol. */
@Module({})
export class AppModule {
  static forEnv(env: ServiceEnv): DynamicModule {
    return { module: AppModule, imports: [...participantInfrastructure(env, [OrderEntity], [Orders1763800000300]), OrdersModule] };
  }
}
