// The public surface of @nest-dtx/sdk. Anything not exported here is internal and may change.

// A participant: the module, its decorators, what an action receives and may throw.
export { DtxParticipantModule } from './participant/participant.module.js';
export type {
  DtxParticipantOptionsFactory,
  ParticipantModuleAsyncOptions,
  ParticipantModuleOptions,
  ParticipantTransportOptions,
  AtModeOptions,
} from './participant/participant.options.js';
export { connectParticipantTransport } from './participant/participant-transport.js';
export { AtAction, LocalStepCompensation, MsgAction, SagaAction, TccAction, TransactionParticipant, TwoPhaseAction, XaAction } from './participant/decorators.js';
export type {
  AtActionOptions,
  LocalStepCompensationOptions,
  MsgActionOptions,
  SagaActionOptions,
  TccActionOptions,
  TwoPhaseActionOptions,
} from './participant/decorators.js';
export type { BranchContext, PhaseCallIdentity } from './participant/participant.explorer.js';
export { BusinessFailure } from './data-layers/core/business-failure.js';
// A phase whose outcome is not known yet (PROTOCOL.md 3.6): `return ongoing({ retryAfterMs })`,
// and its final answer reported later with BranchOutcomes.
export { ongoing, OngoingNotSupportedError, type OngoingAnswer, type OngoingOptions } from './data-layers/core/ongoing-answer.js';
export { BranchOutcomes, type ReportedOutcome } from './participant/branch-outcomes.js';
// The SDK's tables missing from the participant's database (thrown by a data layer, answered 503 DTX_SCHEMA_MISSING).
export { DtxSchemaError, type SchemaNeeds } from './data-layers/core/schema.js';
export { ParticipantErrorCode, type ParticipantErrorBody } from './participant/participant-errors.js';
// Its health, for a Terminus health check (the SDK itself does not load Terminus).
export { DtxParticipantHealthIndicator, type DtxHealthIndicatorResult } from './participant/participant-health.indicator.js';

// Data layers: what they are, the barrier and the XA helper on the participant's layer. The
// adapters are subpath exports (`@nest-dtx/sdk/pg`, `/mysql2`, `/prisma`, `/drizzle`,
// `/kysely`, `/mikro-orm`, `/redis`, `/typeorm`), so an app loads only the one it uses.
export type { AtDataLayer, AtRowRef, AtTable, BusinessAnswer, BusinessWork, DataLayerOptions, DtxDataLayer, XaDataLayer } from './data-layers/core/data-layer.js';
// AT mode: its schema (for migrations other than TypeORM's), its triggers, reads that wait for locks.
export { atSchemaDdl, atTriggerDdl, dropAtSchemaDdl } from './data-layers/core/at-sql.js';
export { AtRowLockedError, isAtRowLocked } from './data-layers/core/sql-at.js';
export { AtLocks, type ReadUnlockedOptions } from './participant/at-branches.js';
export type { BarrierOutcome, BarrierRunOptions } from './data-layers/core/barrier-rules.js';
export { barrierTableDdl } from './data-layers/core/barrier-sql.js';
export type { SqlDialect } from './data-layers/core/sql.js';
export { BranchBarrier, type LocalCommitState, type LocalTransactionBarrier, type LocalTransactionOutcome } from './participant/barrier.js';
// Two-phase messages (mode msg): the check action every participant has, the sender's local
// transaction refused by a check-back, and the consumer side of messages a broker delivers.
export { DTX_MSG_CHECK_ACTION, LocalTransactionRefused } from './participant/msg-check.js';
export {
  DtxInbox,
  DtxInboxError,
  DtxInboxErrorCode,
  INBOX_DEFAULT_TOLERANCE_SECONDS,
  type DtxInboxOptions,
  type InboxMessage,
  type InboxSource,
  type InboxReceipt,
  type InboxWork,
} from './messages/dtx-inbox.js';
export { amqpInboxMessage, natsInboxMessage, type AmqpDelivery, type JetStreamDelivery } from './messages/broker-messages.js';
export { PreparedTransactions } from './participant/prepared-transactions.js';
// TypeORM, the default data layer, also from the main entry (as before the subpaths).
export { dtxMigrations } from './data-layers/typeorm/barrier.migration.js';
export { queryRows } from './data-layers/typeorm/query-rows.js';

// Workflows (PROTOCOL.md 3.7): durable functions the participant hosts, their steps, starting them.
export { Workflow } from './workflow/workflow.decorator.js';
export type { LocalStepOptions, WorkflowContext, WorkflowStepOptions } from './workflow/workflow-context.js';
export type { LocalCompensation } from './workflow/workflow-coordinator.js';
export { WorkflowClient, type WorkflowStartOptions } from './workflow/workflow-client.js';
export {
  StepMismatchError,
  WorkflowDefinitionError,
  WorkflowInterruptedError,
  WorkflowNotActiveError,
  WorkflowRolledBackError,
  WorkflowStepFailedError,
  WorkflowStepUnknownError,
  type StepIdentity,
} from './workflow/workflow-errors.js';

// A transaction manager: the client of the coordinator's REST API.
export { DtxClientModule, type DtxClientModuleAsyncOptions, type DtxClientOptionsFactory } from './client/client.module.js';
export { CoordinatorError } from './client/coordinator-error.js';
export { MsgBuilder, MsgSubmitError, type MsgCheckTarget, type MsgOptions } from './client/msg-builder.js';
export {
  TransactionClient,
  type BeginRequest,
  type BranchOutcomeReport,
  type BranchRequest,
  type InteractiveTransaction,
  type RegisterParticipantRequest,
  type SagaBuilder,
  type SagaStepRequest,
  type TransactionClientOptions,
} from './client/transaction-client.js';
