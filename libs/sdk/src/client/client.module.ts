import { Module, type ConfigurableModuleAsyncOptions } from '@nestjs/common';
import { ConfigurableClientModule, type CLIENT_OPTIONS_FACTORY_METHOD, type DtxClientModuleExtras } from './client.module-definition.js';
import type { TransactionClientOptions } from './transaction-client.js';

/** What forRootAsync's `useClass` or `useExisting` provides: a class that makes the client's options. */
export interface DtxClientOptionsFactory {
  createDtxClientOptions(): TransactionClientOptions | Promise<TransactionClientOptions>;
}

/** forRootAsync: `useFactory` (with `inject`), `useClass` or `useExisting` (a DtxClientOptionsFactory), `imports`, and `isGlobal`. */
export type DtxClientModuleAsyncOptions = ConfigurableModuleAsyncOptions<TransactionClientOptions, typeof CLIENT_OPTIONS_FACTORY_METHOD> & DtxClientModuleExtras;

/**
 * Provides a TransactionClient to a transaction manager's NestJS app:
 * `DtxClientModule.forRoot(options)` (TransactionClientOptions plus `isGlobal`) or
 * `DtxClientModule.forRootAsync({ imports, inject, useFactory | useClass | useExisting, isGlobal })`.
 * Global unless `isGlobal: false`, in which case only the importing module sees the client.
 */
@Module({})
export class DtxClientModule extends ConfigurableClientModule {}
