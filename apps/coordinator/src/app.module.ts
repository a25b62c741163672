import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { ScheduleModule } from '@nestjs/schedule';
import { HealthController } from './health/health.controller.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { MetricsService } from './metrics/metrics.service.js';
import { ParticipantGates } from './overload/participant-gates.service.js';
import { InProcessTxEventBus, RedisTxEventBus, TxEventBus } from './bus/tx-event-bus.js';
import { AdminController } from './admin/admin.controller.js';
import { AdminService } from './admin/admin.service.js';
import { ApiKeyGuard } from './auth/api-key.guard.js';
import { clientRateLimitModule } from './auth/client-rate-limit.js';
import { ConsoleAssets } from './console/console-assets.service.js';
import { ConsoleController } from './console/console.controller.js';
import { TransactionFeed } from './console/transaction-feed.service.js';
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import { CoordinatorConfig } from './config/coordinator.config.js';
import { CoordinatorConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { DependencyOutages, DependencyOutagesModule } from './logging/dependency-outages.js';
import { BranchCaller } from './engine/branch-caller.js';
import { MODE_PROCESSOR_PROVIDERS } from './engine/processors/mode-processors.js';
import { TransactionWriter } from './engine/transaction-writer.js';
import { TransactionEngine } from './engine/transaction-engine.service.js';
import { ParticipantInvoker } from './invoker/participant-invoker.service.js';
import { ParticipantsAdminController, ParticipantsController } from './participants/participants.controller.js';
import { ParticipantsService } from './participants/participants.service.js';
import { RecoveryService } from './recovery/recovery.service.js';
import { RetentionModule } from './retention/retention.module.js';
import { TransactionQueries } from './store/transaction.queries.js';
import { DatabaseClock, DatabaseTime } from './store/database-clock.js';
import { ParticipantStore } from './store/participant.store.js';
import { STORE_OPTIONS, TransactionStore, type StoreOptions } from './store/transaction.store.js';
import { TransactionsController } from './transactions/transactions.controller.js';
import { DocsController } from './docs/docs.controller.js';
import { TransactionsService } from './transactions/transactions.service.js';

@Module({
  imports: [
    CoordinatorConfigModule,
    DependencyOutagesModule,
    DatabaseModule,
    // Terminus would log every failed probe at error level: HealthController reports the
    // dependency's outage instead (one warn line an outage, logging/outage-episode.ts).
    TerminusModule.forRoot({ logger: false }),
    ScheduleModule.forRoot(),
    RetentionModule,
    clientRateLimitModule(),
  ],
  controllers: [TransactionsController, ParticipantsController, ParticipantsAdminController, AdminController, ConsoleController, HealthController, MetricsController, DocsController],
  providers: [
    { provide: APP_FILTER, useClass: HttpExceptionFilter },
    // Every route needs an API key with the right role when API_KEYS is set (auth/roles.decorator.ts).
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    {
      provide: TxEventBus,
      inject: [CoordinatorConfig, DependencyOutages],
      useFactory: (config: CoordinatorConfig, outages: DependencyOutages): TxEventBus =>
        config.redisUrl ? new RedisTxEventBus(config.redisUrl, outages.redis) : new InProcessTxEventBus(),
    },
    {
      provide: STORE_OPTIONS,
      inject: [CoordinatorConfig],
      useFactory: (config: CoordinatorConfig): StoreOptions => ({ writeConcurrency: config.env.DB_WRITE_CONCURRENCY }),
    },
    TransactionStore,
    DatabaseClock,
    // What the engine and services compare stored times with (a plain DatabaseTime in unit specs).
    { provide: DatabaseTime, useExisting: DatabaseClock },
    ParticipantStore,
    ParticipantsService,
    ParticipantInvoker,
    ParticipantGates,
    BranchCaller,
    TransactionWriter,
    ...MODE_PROCESSOR_PROVIDERS,
    TransactionEngine,
    TransactionsService,
    RecoveryService,
    TransactionQueries,
    AdminService,
    ConsoleAssets,
    TransactionFeed,
    MetricsService,
  ],
})
export class AppModule {}
