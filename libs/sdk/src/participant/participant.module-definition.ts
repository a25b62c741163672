import { ConfigurableModuleBuilder, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AtBranches, AtLocks } from './at-branches.js';
import { BranchBarrier } from './barrier.js';
import { dataLayerProvider } from './data-layer.provider.js';
import { BarrierRetention } from './barrier-retention.js';
import { BranchDispatcher } from './branch-dispatcher.js';
import { BranchOutcomes } from './branch-outcomes.js';
import { CallVerifier } from './call-verifier.js';
import { checkParticipantOptions, resolveParticipantOptions } from './options-check.js';
import { DtxParticipantHealthIndicator } from './participant-health.indicator.js';
import { createParticipantHttpController } from './participant-http.controller.js';
import { ParticipantRequestErrors } from './participant-http-errors.js';
import { ParticipantMessageHandler } from './participant-message.handler.js';
import { ParticipantExplorer } from './participant.explorer.js';
import { ParticipantSchema } from './participant-schema.js';
import {
  PARTICIPANT_OPTIONS,
  PARTICIPANT_OPTIONS_FACTORY_METHOD,
  type ParticipantModuleExtras,
  type ParticipantModuleOptions,
} from './participant.options.js';
import { PreparedTransactions } from './prepared-transactions.js';
import { ParticipantRegistration } from './registration.service.js';
import { SigningKeys } from './signing-keys.js';
import { WORKFLOW_PROVIDERS } from '../workflow/workflow.providers.js';
import { WorkflowClient } from '../workflow/workflow-client.js';

const PROVIDERS: Provider[] = [
  dataLayerProvider,
  ParticipantExplorer,
  ParticipantSchema,
  BranchBarrier,
  PreparedTransactions,
  AtBranches,
  AtLocks,
  BranchDispatcher,
  BranchOutcomes,
  SigningKeys,
  ParticipantRegistration,
  CallVerifier,
  ParticipantMessageHandler,
  ParticipantRequestErrors,
  BarrierRetention,
  DtxParticipantHealthIndicator,
  ...WORKFLOW_PROVIDERS,
];

const EXPORTS = [BranchBarrier, BranchOutcomes, PreparedTransactions, AtLocks, SigningKeys, DtxParticipantHealthIndicator, WorkflowClient, PARTICIPANT_OPTIONS];

/**
 * The extras as the builder hands them to the transform: the defaults, then everything forRoot
 * was given (the options too, `path` among them) or what forRootAsync was given besides its
 * factory (`isGlobal`, `path`).
 */
export type ParticipantModuleDefinitionExtras = ParticipantModuleExtras & { path?: string };

/** The module beyond the builder's options provider: routes, the checked options, the SDK's providers. */
function participantModule(definition: DynamicModule, { isGlobal = false, path = 'tx' }: ParticipantModuleDefinitionExtras): DynamicModule {
  const given = definition.providers?.find((provider): provider is { provide: string; useValue: ParticipantModuleOptions } =>
    typeof provider === 'object' && 'provide' in provider && provider.provide === DTX_PARTICIPANT_MODULE_OPTIONS && 'useValue' in provider,
  );
  // forRoot: the options are known now, so bad ones fail where the module is defined.
  if (given) checkParticipantOptions(given.useValue);
  return {
    ...definition,
    global: isGlobal,
    imports: [DiscoveryModule, ...(definition.imports ?? [])],
    controllers: [createParticipantHttpController(path)],
    providers: [
      ...(definition.providers ?? []),
      {
        provide: PARTICIPANT_OPTIONS,
        inject: [DTX_PARTICIPANT_MODULE_OPTIONS],
        useFactory: (options: ParticipantModuleOptions) => resolveParticipantOptions(options, path),
      },
      ...PROVIDERS,
    ],
    exports: EXPORTS,
  };
}

/**
 * DtxParticipantModule's forRoot/forRootAsync. DTX_PARTICIPANT_MODULE_OPTIONS holds the options
 * as given (or as the factory returned them); the SDK's providers inject PARTICIPANT_OPTIONS,
 * the same once checked, with the declared route prefix.
 */
export const {
  ConfigurableModuleClass: ConfigurableParticipantModule,
  MODULE_OPTIONS_TOKEN: DTX_PARTICIPANT_MODULE_OPTIONS,
} = new ConfigurableModuleBuilder<ParticipantModuleOptions>({ moduleName: 'DtxParticipant' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName(PARTICIPANT_OPTIONS_FACTORY_METHOD)
  .setExtras<ParticipantModuleDefinitionExtras>({ isGlobal: false }, participantModule)
  .build();
