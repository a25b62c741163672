import { Module, type DynamicModule } from '@nestjs/common';
import type { Pool } from 'mysql2/promise';
import { participantOptions, type ServiceEnv } from '@app/demo-support';
import { DtxParticipantModule } from '@nest-dtx/sdk';
import { mysql2DataLayer } from '@nest-dtx/sdk/mysql2';
import { AccountsController } from './accounts.controller.js';
import { AccountsService } from './accounts.service.js';
import { DatabaseModule, MYSQL_POOL } from './database.js';

/**
 * Bank B of the polyglot demo: accounts in MariaDB through mysql2. The SDK is told so by its
 * `dataLayer` option; the actions are written as on any other data layer.
 */
@Module({})
export class AppModule {
  static forEnv(env: ServiceEnv): DynamicModule {
    const database = DatabaseModule.forUrl(env.DATABASE_URL);
    return {
      module: AppModule,
      imports: [
        database,
        DtxParticipantModule.forRootAsync({
          imports: [database],
          inject: [MYSQL_POOL],
          useFactory: (pool: Pool) => ({ ...participantOptions(env), dataLayer: mysql2DataLayer(pool) }),
        }),
      ],
      controllers: [AccountsController],
      providers: [AccountsService],
    };
  }
}
