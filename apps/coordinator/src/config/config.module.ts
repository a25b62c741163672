import { Global, Module } from '@nestjs/common';
import { embeddedDatabaseProvider } from '../database/embedded-database.provider.js';
import { CoordinatorConfig, loadCoordinatorEnv } from './coordinator.config.js';

/** The validated configuration, and the embedded database it may call for, to every module. */
@Global()
@Module({
  providers: [{ provide: CoordinatorConfig, useFactory: () => new CoordinatorConfig(loadCoordinatorEnv()) }, embeddedDatabaseProvider],
  exports: [CoordinatorConfig, embeddedDatabaseProvider.provide],
})
export class CoordinatorConfigModule {}
