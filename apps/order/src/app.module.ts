import { Module, type DynamicModule } from '@nestjs/common';
import { participantInfrastructure, type ServiceEnv } from '@app/demo-support';
import { DtxClientModule } from '@nest-dtx/sdk';
import { Orders1763800000300 } from './migrations/1763800000300-orders.js';
import { OrderEntity } from './orders/order.entity.js';
import { OrderPlacementController } from './orders/order-placement.controller.js';
import { OrderPlacementService } from './orders/order-placement.service.js';
import { OrdersModule } from './orders/orders.module.js';

/**
 * The order service: its own database, its own migrations, and the SDK for the protocol. It is a
 * participant (TCC and saga orders, and the check-back of its messages) and also a transaction
 * manager: it sends each order it takes itself as a message (OrderPlacementService), with the
 * same COORDINATOR_URL and key (which then needs the client role too). The placement lives here
 * rather than in OrdersModule because it needs the participant module's BranchBarrier.
 */
@Module({})
export class AppModule {
  static forEnv(env: ServiceEnv): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ...participantInfrastructure(env, [OrderEntity], [Orders1763800000300]),
        DtxClientModule.forRoot({ coordinatorUrl: env.COORDINATOR_URL, apiKey: env.COORDINATOR_API_KEY }),
        OrdersModule,
      ],
      controllers: [OrderPlacementController],
      providers: [OrderPlacementService],
    };
  }
}
