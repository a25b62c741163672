import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { ConsoleAssets } from '../console/console-assets.service.js';
import { ConsoleController } from '../console/console.controller.js';
import { TransactionFeed } from '../console/transaction-feed.service.js';
import { EngineModule } from '../engine/engine.module.js';
import { OverloadModule } from '../overload/overload.module.js';
import { RecoveryModule } from '../recovery/recovery.module.js';
import { StoreModule } from '../store/store.module.js';
import { AdminController } from './admin.controller.js';
import { AdminService } from './admin.service.js';

/**
 * The operator's API (PROTOCOL.md 6) and the web console on it. Transactions are read and
 * steered through the engine; lists, counts and held locks come from the store's read-only
 * TransactionQueries; the console's live feed is the bus.
 */
@Module({
  imports: [EngineModule, RecoveryModule, StoreModule, OverloadModule, BusModule],
  controllers: [AdminController, ConsoleController],
  providers: [AdminService, ConsoleAssets, TransactionFeed],
})
export class AdminModule {}
