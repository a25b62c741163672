import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CreateDtxBarrier1763800000100, DtxParticipantModule } from '@app/sdk';
import { AccountEntity, PendingCreditEntity } from './accounts/account.entity.js';
import { AccountsModule } from './accounts/accounts.module.js';
import { participantTransport, type AccountEnv } from './config.js';
import { Accounts1763800000200 } from './migrations/1763800000200-accounts.js';

/** The account service: its own database, its own migrations, and the SDK for the protocol. */
@Module({})
export class AppModule {
  static forEnv(env: AccountEnv): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: env.DATABASE_URL,
          entities: [AccountEntity, PendingCreditEntity],
          migrations: [CreateDtxBarrier1763800000100, Accounts1763800000200],
          migrationsRun: true,
          synchronize: false,
          extra: { max: 20 },
          retryAttempts: 0,
        }),
        DtxParticipantModule.forRoot({
          name: env.PARTICIPANT_NAME,
          coordinatorUrl: env.COORDINATOR_URL,
          publicUrl: env.PUBLIC_URL ?? `http://${env.HOST}:${env.PORT}`,
          transport: participantTransport(env),
        }),
        AccountsModule,
      ],
    };
  }
}
