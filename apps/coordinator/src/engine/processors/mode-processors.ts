import { DiscoveryService } from '@nestjs/core';
import { TransactionRound } from '../transaction-round.js';
import { ModeExplorer } from './mode-explorer.js';
import { ModeRegistry } from './mode-registry.js';
import { MsgProcessor } from './msg.processor.js';
import { SagaProcessor } from './saga.processor.js';
import { TccProcessor } from './tcc.processor.js';
import { TwoPhaseCommitProcessor } from './two-phase-commit.processor.js';
import { WorkflowProcessor } from './workflow.processor.js';

/**
 * The providers that plug the modes into the engine, in one list for the module that provides
 * the engine: each mode's plug-in (a new mode adds its class here, and nothing else), the
 * registry and the explorer that fills it, and the round every mode's waves run through.
 * DiscoveryService is listed here rather than imported with DiscoveryModule, so that this list
 * is all a module needs.
 */
export const MODE_PROCESSOR_PROVIDERS = [
  TccProcessor,
  TwoPhaseCommitProcessor,
  SagaProcessor,
  MsgProcessor,
  WorkflowProcessor,
  ModeRegistry,
  ModeExplorer,
  DiscoveryService,
  TransactionRound,
];
