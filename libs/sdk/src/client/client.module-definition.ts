import { ConfigurableModuleBuilder, type DynamicModule } from '@nestjs/common';
import { TransactionClient, type TransactionClientOptions } from './transaction-client.js';

/** The name of the method a forRootAsync `useClass`/`useExisting` provider implements. */
export const CLIENT_OPTIONS_FACTORY_METHOD = 'createDtxClientOptions';

/** What shapes DtxClientModule itself rather than its TransactionClient. */
export interface DtxClientModuleExtras {
  /** Provide the TransactionClient to every module of the app. Default true (as DtxClientModule always did). */
  isGlobal?: boolean;
}

function clientModule(definition: DynamicModule, { isGlobal = true }: DtxClientModuleExtras): DynamicModule {
  return {
    ...definition,
    global: isGlobal,
    providers: [
      ...(definition.providers ?? []),
      { provide: TransactionClient, inject: [DTX_CLIENT_MODULE_OPTIONS], useFactory: (options: TransactionClientOptions) => new TransactionClient(options) },
    ],
    exports: [TransactionClient],
  };
}

export const {
  ConfigurableModuleClass: ConfigurableClientModule,
  MODULE_OPTIONS_TOKEN: DTX_CLIENT_MODULE_OPTIONS,
} = new ConfigurableModuleBuilder<TransactionClientOptions>({ moduleName: 'DtxClient' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName(CLIENT_OPTIONS_FACTORY_METHOD)
  .setExtras<DtxClientModuleExtras>({ isGlobal: true }, clientModule)
  .build();
