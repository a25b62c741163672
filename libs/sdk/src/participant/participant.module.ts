import { Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BranchBarrier } from './barrier.js';
import { BarrierRetention } from './barrier-retention.js';
import { BranchDispatcher } from './branch-dispatcher.js';
import { CallVerifier } from './call-verifier.js';
import { checkAsyncOptions, checkParticipantOptions } from './options-check.js';
import { createParticipantHttpController } from './participant-http.controller.js';
import { ParticipantRequestErrors } from './participant-http-errors.js';
import { createParticipantMessageController } from './participant-message.controller.js';
import { branchPatternFor } from './participant-transport.js';
import { ParticipantExplorer } from './participant.explorer.js';
import {
  PARTICIPANT_OPTIONS,
  type ParticipantModuleAsyncOptions,
  type ParticipantModuleOptions,
  type ParticipantTransportOptions,
} from './participant.options.js';
import { PreparedTransactions } from './prepared-transactions.js';
import { ParticipantRegistration } from './registration.service.js';
import { SigningKeys } from './signing-keys.js';

const PROVIDERS: Provider[] = [
  ParticipantExplorer,
  BranchBarrier,
  PreparedTransactions,
  BranchDispatcher,
  SigningKeys,
  ParticipantRegistration,
  CallVerifier,
  ParticipantRequestErrors,
  BarrierRetention,
];

const EXPORTS = [BranchBarrier, PreparedTransactions, SigningKeys];

/**
 * The routes always exist; the message handler only for a microservice transport (connect it
 * with connectParticipantTransport). Its pattern is fixed when the module is defined.
 */
function controllersFor(path: string, transport: ParticipantTransportOptions['kind'], name: string | undefined): Type<unknown>[] {
  const controllers = [createParticipantHttpController(path)];
  if (transport !== 'http') controllers.push(createParticipantMessageController(branchPatternFor(transport, name ?? '')));
  return controllers;
}

/**
 * Makes a NestJS app a transaction participant: discovers the decorated actions, serves the
 * participant protocol, verifies the coordinator's signature on every call before anything
 * runs (CallVerifier), runs every phase in the barrier, and registers with the coordinator,
 * which gives it its signing secret (SigningKeys). Needs TypeOrmModule.forRoot in the app (the
 * barrier uses its DataSource) and the `CreateDtxBarrier…` migration in its migrations; create
 * the app with `rawBody: true` so the signature is checked over the bytes that arrived. Old
 * barrier rows are deleted in the background past `barrierRetentionMs` (BarrierRetention).
 * Options are checked once, at definition (forRoot) or when the factory ran (forRootAsync).
 */
@Module({})
export class DtxParticipantModule {
  static forRoot(options: ParticipantModuleOptions): DynamicModule {
    checkParticipantOptions(options);
    return {
      module: DtxParticipantModule,
      imports: [DiscoveryModule],
      controllers: controllersFor(options.path ?? 'tx', options.transport?.kind ?? 'http', options.name),
      providers: [{ provide: PARTICIPANT_OPTIONS, useValue: options }, ...PROVIDERS],
      exports: EXPORTS,
    };
  }

  /**
   * The factory's options must agree with what is declared here (path, transport kind, and
   * the name for Redis), since the routes and the message handler exist before it runs.
   */
  static forRootAsync(options: ParticipantModuleAsyncOptions): DynamicModule {
    const transport = options.transport ?? 'http';
    if (transport === 'redis' && !options.name) throw new Error('DtxParticipantModule.forRootAsync: transport redis needs name (its message pattern holds it)');
    return {
      module: DtxParticipantModule,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      controllers: controllersFor(options.path ?? 'tx', transport, options.name),
      providers: [
        {
          provide: PARTICIPANT_OPTIONS,
          inject: options.inject ?? [],
          useFactory: async (...args: never[]): Promise<ParticipantModuleOptions> => {
            const resolved = await options.useFactory(...args);
            checkAsyncOptions(options, resolved);
            checkParticipantOptions(resolved);
            return resolved;
          },
        },
        ...PROVIDERS,
      ],
      exports: EXPORTS,
    };
  }
}
