import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { AdminModule } from './admin/admin.module.js';
import { ApiKeyGuard } from './auth/api-key.guard.js';
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import { CoordinatorConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { OperationsModule } from './health/operations.module.js';
import { DependencyOutagesModule } from './logging/dependency-outages.js';
import { RecoveryModule } from './recovery/recovery.module.js';
import { RetentionModule } from './retention/retention.module.js';
import { TelemetryModule } from './telemetry/telemetry.module.js';
import { TransactionsModule } from './transactions/transactions.module.js';

/**
 * The coordinator: its feature modules, and the filter and guard every route passes. Each
 * feature module imports what it uses and exports what others may use; data flows one way,
 * transport/controllers -> services -> engine (EngineModule) -> store (StoreModule). The
 * global modules are the cross-cutting ones: the configuration (CoordinatorConfigModule), the
 * dependency-outage episodes (DependencyOutagesModule), the DataSource (DatabaseModule's
 * TypeORM) and the scheduler (ScheduleModule).
 */
@Module({
  imports: [
    CoordinatorConfigModule,
    DependencyOutagesModule,
    DatabaseModule,
    ScheduleModule.forRoot(),
    RetentionModule,
    TelemetryModule,
    // The order of the modules with routes is the order of the paths in openapi.json
    // (transactions, participants, admin and console, operations): keep it.
    TransactionsModule,
    RecoveryModule,
    AdminModule,
    OperationsModule,
  ],
  providers: [
    { provide: APP_FILTER, useClass: HttpExceptionFilter },
    // Every route needs an API key with the right role when API_KEYS is set (auth/roles.decorator.ts).
    { provide: APP_GUARD, useClass: ApiKeyGuard },
  ],
})
export class AppModule {}
