import { Module, type DynamicModule } from '@nestjs/common';
import { TransactionClient, type TransactionClientOptions } from './transaction-client.js';

/** Provides a TransactionClient to a transaction manager's NestJS app. */
@Module({})
export class DtxClientModule {
  static forRoot(options: TransactionClientOptions): DynamicModule {
    return {
      module: DtxClientModule,
      global: true,
      providers: [{ provide: TransactionClient, useValue: new TransactionClient(options) }],
      exports: [TransactionClient],
    };
  }
}
