// The public surface of @nest-dtx/sdk. Anything not exported here is internal and may change.

// A participant: the module, its decorators, what an action receives and may throw.
export { DtxParticipantModule } from './participant/participant.module.js';
export type {
  DtxParticipantOptionsFactory,
  ParticipantModuleAsyncOptions,
  ParticipantModuleOptions,
  ParticipantTransportOptions,
} from './participant/participant.options.js';
export { connectParticipantTransport } from './participant/participant-transport.js';
export { SagaAction, TccAction, TransactionParticipant, TwoPhaseAction, XaAction } from './participant/decorators.js';
export type { SagaActionOptions, TccActionOptions, TwoPhaseActionOptions } from './participant/decorators.js';
export type { BranchContext } from './participant/participant.explorer.js';
export { BusinessFailure } from './participant/business-failure.js';
export { ParticipantErrorCode, type ParticipantErrorBody } from './participant/participant-errors.js';
// Its health, for a Terminus health check (the SDK itself does not load Terminus).
export { DtxParticipantHealthIndicator, type DtxHealthIndicatorResult } from './participant/participant-health.indicator.js';

// What a participant's data layer needs: the barrier's table, the barrier and the XA helper.
export { dtxMigrations } from './participant/barrier.migration.js';
export { BranchBarrier, type BarrierOutcome } from './participant/barrier.js';
export { PreparedTransactions } from './participant/prepared-transactions.js';
export { queryRows } from './participant/query-rows.js';

// A transaction manager: the client of the coordinator's REST API.
export { DtxClientModule, type DtxClientModuleAsyncOptions, type DtxClientOptionsFactory } from './client/client.module.js';
export { CoordinatorError } from './client/coordinator-error.js';
export {
  TransactionClient,
  type BeginRequest,
  type BranchRequest,
  type InteractiveTransaction,
  type RegisterParticipantRequest,
  type SagaBuilder,
  type SagaStepRequest,
  type TransactionClientOptions,
} from './client/transaction-client.js';
