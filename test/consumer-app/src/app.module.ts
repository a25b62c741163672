import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DtxParticipantModule, dtxMigrations } from '@nest-dtx/sdk';
import { CreateWallets1700000000000 } from './wallet/create-wallets.migration';
import { WalletService } from './wallet/wallet.service';

const port = Number(process.env.PORT ?? 3000);

@Module({
  imports: [
    TypeOrmModule.forRoot({
      type: 'postgres',
      url: process.env.DATABASE_URL,
      migrations: [...dtxMigrations, CreateWallets1700000000000],
      migrationsRun: true,
    }),
    DtxParticipantModule.forRoot({
      name: 'wallet',
      coordinatorUrl: process.env.COORDINATOR_URL ?? 'http://127.0.0.1:7070',
      publicUrl: `http://127.0.0.1:${port}`,
    }),
  ],
  providers: [WalletService],
})
export class AppModule {}
