import { Module, type DynamicModule } from '@nestjs/common';
import { participantInfrastructure, type ServiceEnv } from '@app/demo-support';
import { AccountEntity, PendingCreditEntity } from './accounts/account.entity.js';
import { AccountsModule } from './accounts/accounts.module.js';
import { Accounts1763800000200 } from './migrations/1763800000200-accounts.js';
import { msgTransfers } from './transfers/msg-transfers.js';

/** The account service: its own database, its own migrations, and the SDK for the protocol. */
@Module({})
export class AppModule {
  static forEnv(env: ServiceEnv): DynamicModule {
    const transfers = msgTransfers(env);
    return {
      module: AppModule,
      imports: [...participantInfrastructure(env, [AccountEntity, PendingCreditEntity], [Accounts1763800000200], {
        tables: ['accounts'],
        ...(env.AT_LOCK_WAIT_MS !== undefined ? { lockWaitMs: env.AT_LOCK_WAIT_MS } : {}),
      }), AccountsModule, ...transfers.imports],
      controllers: transfers.controllers,
      providers: transfers.providers,
    };
  }
}
