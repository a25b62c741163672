import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BranchBarrier } from './barrier.js';
import { BarrierRetention } from './barrier-retention.js';
import { BranchDispatcher } from './branch-dispatcher.js';
import { createParticipantHttpController } from './participant-http.controller.js';
import { createParticipantMessageController } from './participant-message.controller.js';
import { branchPatternFor } from './participant-transport.js';
import { ParticipantExplorer } from './participant.explorer.js';
import {
  PARTICIPANT_OPTIONS,
  type ParticipantModuleAsyncOptions,
  type ParticipantModuleOptions,
} from './participant.options.js';
import { PreparedTransactions } from './prepared-transactions.js';
import { ParticipantRegistration } from './registration.service.js';

const PROVIDERS: Provider[] = [ParticipantExplorer, BranchBarrier, PreparedTransactions, BranchDispatcher, ParticipantRegistration, BarrierRetention];

/**
 * Makes a NestJS app a transaction participant: discovers the decorated actions, serves the
 * participant protocol, runs every phase in the barrier, and registers with the coordinator.
 * Needs TypeOrmModule.forRoot in the app (the barrier uses its DataSource) and the
 * `CreateDtxBarrier…` migration in its migrations. Old barrier rows are deleted in the
 * background past `barrierRetentionMs` (BarrierRetention).
 */
@Module({})
export class DtxParticipantModule {
  static forRoot(options: ParticipantModuleOptions): DynamicModule {
    // The HTTP routes always exist; the message handler only for a microservice transport
    // (connect it with connectParticipantTransport).
    const controllers = [createParticipantHttpController(options.path ?? 'tx')];
    if (options.transport && options.transport.kind !== 'http') controllers.push(createParticipantMessageController(branchPatternFor(options)));
    return {
      module: DtxParticipantModule,
      imports: [DiscoveryModule],
      controllers,
      providers: [{ provide: PARTICIPANT_OPTIONS, useValue: options }, ...PROVIDERS],
      exports: [BranchBarrier, PreparedTransactions],
    };
  }

  static forRootAsync(options: ParticipantModuleAsyncOptions): DynamicModule {
    return {
      module: DtxParticipantModule,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      controllers: [createParticipantHttpController(options.path ?? 'tx')],
      providers: [
        { provide: PARTICIPANT_OPTIONS, inject: options.inject ?? [], useFactory: options.useFactory },
        ...PROVIDERS,
      ],
      exports: [BranchBarrier, PreparedTransactions],
    };
  }
}
