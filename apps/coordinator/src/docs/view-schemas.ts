/**
 * The answers of the REST API as classes, for the OpenAPI document only: views.ts declares them
 * as interfaces (no runtime trace), and OpenAPI needs something to read decorators from. Each
 * class `implements` its interface, so the compiler keeps the two in step.
 */
import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import {
  AT_LOCKS_REPORTED,
  ErrorCode,
  ID_PATTERN,
  LIMITS,
  NAME_PATTERN,
  TRANSPORTS,
  BRANCH_STATUSES,
  GLOBAL_STATUSES,
  MODES,
  ROLLBACK_REASONS,
  STEP_KINDS,
  type BranchStatus,
  type GlobalStatus,
  type Mode,
  type RollbackReason,
  type StepKind,
  type AdminStats,
  type BreakerStateView,
  type InstanceLoadView,
  type ParticipantAdminView,
  type ParticipantLoadView,
  type ParticipantRegistrationView,
  type SecretRotationView,
  type BranchDetailView,
  type BranchLocksView,
  type BranchOutcomeView,
  type BranchView,
  type PendingBranchView,
  type HeldLockView,
  type HeldLocksPage,
  type Json,
  type JsonObject,
  type ParticipantView,
  type TransactionCounts,
  type TransactionDetailView,
  type TransactionEventView,
  type TransactionPage,
  type TransactionView,
} from '@nest-dtx/protocol';

const ANY_JSON = 'Any JSON value (null when there is none).';

/**
 * The bounds the server keeps, as OpenAPI states them. `x-any-json` marks any JSON value; the
 * document finisher writes it as the empty schema `{}` (@nestjs/swagger has no way to say so).
 */
export const ANY_JSON_MARK = 'x-any-json';
const ANY = { [ANY_JSON_MARK]: true } as const;
const ID = { type: String, pattern: ID_PATTERN.source, maxLength: 128 } as const;
const NAME = { type: String, pattern: NAME_PATTERN.source, maxLength: 64 } as const;
/** `Date.prototype.toISOString()`: 24 characters, 27 for years past 9999. */
const DATE_TIME = { type: String, format: 'date-time', maxLength: 27 } as const;
const COUNT = { type: 'integer', format: 'int32', minimum: 0, maximum: 2147483647 } as const;
const BIG_COUNT = { type: 'integer', format: 'int64', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
/** A participant's signing secret: `whsec_` and the base64 of its 24 to 64 bytes. */
const SECRET = { type: String, pattern: '^whsec_[A-Za-z0-9+/]+={0,2}$', maxLength: 100 } as const;
const CURSOR = { type: String, nullable: true, pattern: '^[A-Za-z0-9_-]{1,600}$', maxLength: 600 } as const;

@ApiSchema({ name: 'BranchView' })
export class BranchViewSchema implements BranchView {
  @ApiProperty({ ...ID, example: 'b1' })
  branchId!: string;

  @ApiProperty({ ...NAME, example: 'account' })
  participant!: string;

  @ApiProperty({ ...NAME, example: 'debit' })
  action!: string;

  @ApiProperty({ enum: BRANCH_STATUSES, enumName: 'BranchStatus', example: 'committed' })
  status!: BranchStatus;

  @ApiProperty({ ...COUNT, description: 'Calls made to the participant for this branch, all phases.', example: 2 })
  attempts!: number;

  @ApiProperty({ ...ANY, description: `Why phase 1 failed, or the last phase-2 error still unresolved. ${ANY_JSON}`, example: null })
  lastError!: Json;

  @ApiProperty({ ...ANY, description: `The participant's answer to phase 1. ${ANY_JSON}`, example: {} })
  result!: Json;

  @ApiPropertyOptional({ enum: STEP_KINDS, enumName: 'StepKind', description: "A workflow's step: its kind. Absent on the branches of other modes.", example: 'tcc' })
  kind?: StepKind;

  @ApiProperty({ ...DATE_TIME, nullable: true, description: 'Since when the phase in progress has answered 202 (ongoing); null when it is not waiting so.', example: null })
  waitingSince!: string | null;
}

@ApiSchema({ name: 'WorkflowTargetView' })
export class WorkflowTargetViewSchema {
  @ApiProperty({ ...NAME, description: 'The host: the participant that registered the workflow.', example: 'orders' })
  participant!: string;

  @ApiProperty({ ...NAME, description: 'The workflow, an action of the host registered with mode workflow.', example: 'placeOrder' })
  name!: string;
}

@ApiSchema({ name: 'TransactionView' })
export class TransactionViewSchema implements TransactionView {
  @ApiProperty({ ...ID, example: 'order-4711' })
  gid!: string;

  @ApiProperty({ enum: MODES, enumName: 'Mode', example: 'tcc' })
  mode!: Mode;

  @ApiProperty({ enum: GLOBAL_STATUSES, enumName: 'GlobalStatus', example: 'committing' })
  status!: GlobalStatus;

  @ApiProperty({ enum: ROLLBACK_REASONS, enumName: 'RollbackReason', nullable: true, description: 'Set on rollback.', example: null })
  reason!: RollbackReason | null;

  @ApiProperty(DATE_TIME)
  createdAt!: string;

  @ApiProperty(DATE_TIME)
  updatedAt!: string;

  @ApiProperty({ ...DATE_TIME, description: 'createdAt + timeoutMs.' })
  deadline!: string;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'The JSON object sent at begin ({} when none).', example: {} })
  metadata!: JsonObject;

  @ApiProperty({ description: 'Phase 2 was refused, or retried more than the configured count; still retried.', example: false })
  needsAttention!: boolean;

  @ApiProperty({ type: [BranchViewSchema], maxItems: LIMITS.maxBranches, description: "At most MAX_BRANCHES_PER_TRANSACTION (a setting, at most 1000). A workflow's steps, in recorded order." })
  branches!: BranchView[];

  @ApiPropertyOptional({ type: WorkflowTargetViewSchema, description: 'mode workflow only.' })
  workflow?: WorkflowTargetViewSchema;

  @ApiPropertyOptional({ ...ANY, description: `mode workflow only: what it was begun with. ${ANY_JSON}` })
  input?: Json;

  @ApiPropertyOptional({ ...ANY, description: `mode workflow only: what its commit carried (null before). ${ANY_JSON}` })
  result?: Json;
}

@ApiSchema({ name: 'BranchOutcomeView' })
export class BranchOutcomeViewSchema implements BranchOutcomeView {
  @ApiProperty({ ...ID, example: 'b1' })
  branchId!: string;

  @ApiProperty({ enum: BRANCH_STATUSES, enumName: 'BranchStatus', example: 'prepared' })
  status!: BranchStatus;

  @ApiProperty({ ...ANY, description: `The participant's JSON body. ${ANY_JSON}`, example: null })
  result!: Json;
}

@ApiSchema({ name: 'PendingBranchView' })
export class PendingBranchViewSchema implements PendingBranchView {
  @ApiProperty({ ...ID, example: 'b1' })
  branchId!: string;

  @ApiProperty({ enum: ['pending'], example: 'pending' })
  status!: 'pending';
}

@ApiSchema({ name: 'ParticipantActionView' })
export class ParticipantActionViewSchema {
  @ApiProperty({ ...NAME, example: 'debit' })
  name!: string;

  @ApiProperty({ enum: MODES, enumName: 'Mode', isArray: true, maxItems: MODES.length, example: ['tcc', 'saga'] })
  modes!: Mode[];
}

@ApiSchema({ name: 'ParticipantView' })
export class ParticipantViewSchema implements ParticipantView {
  @ApiProperty({ ...NAME, example: 'account' })
  name!: string;

  @ApiProperty({ enum: TRANSPORTS, enumName: 'Transport', example: 'http' })
  transport!: string;

  @ApiProperty({ type: String, format: 'uri', maxLength: 2048, nullable: true, description: 'http: the base URL.', example: 'http://127.0.0.1:4001/tx' })
  endpoint!: string | null;

  @ApiProperty({ type: String, maxLength: 253, nullable: true, description: 'tcp: the host.', example: null })
  host!: string | null;

  @ApiProperty({ type: 'integer', format: 'int32', minimum: 1, maximum: 65535, nullable: true, description: 'tcp: the port.', example: null })
  port!: number | null;

  @ApiProperty({ description: 'rabbitmq/nats: a publish target, each action a RabbitMQ queue or NATS JetStream subject the coordinator publishes to.', example: false })
  publish!: boolean;

  @ApiProperty({ type: [ParticipantActionViewSchema], maxItems: 200 })
  actions!: { name: string; modes: Mode[] }[];

  @ApiProperty(DATE_TIME)
  updatedAt!: string;
}

@ApiSchema({ name: 'ParticipantRegistrationView' })
export class ParticipantRegistrationViewSchema extends ParticipantViewSchema implements ParticipantRegistrationView {
  @ApiProperty({ description: 'This participant\'s own secret for verifying the coordinator\'s calls (PROTOCOL.md 5.5); never listed.', ...SECRET, example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  signingSecret!: string;
}

@ApiSchema({ name: 'CallsNotMade', description: 'Calls a gate did not make since its instance started, by reason; their transactions try again later.' })
export class CallsNotMadeSchema {
  @ApiProperty({ ...BIG_COUNT, description: 'Refused while the circuit breaker was open (or its probe was out).', example: 0 })
  breakerOpen!: number;

  @ApiProperty({ ...BIG_COUNT, description: 'Refused because PARTICIPANT_QUEUE_LIMIT calls were waiting already.', example: 0 })
  queueFull!: number;

  @ApiProperty({ ...BIG_COUNT, description: 'Left the queue when too little of their CALL_TIMEOUT_MS (or transaction deadline) was left to make the call.', example: 0 })
  queueTimeout!: number;
}

@ApiSchema({
  name: 'ParticipantLoadView',
  description: "A participant's gate on the instance that answered (each instance has its own): calls in flight and waiting, the adaptive limit, the circuit breaker.",
})
export class ParticipantLoadViewSchema implements ParticipantLoadView {
  @ApiProperty({ ...COUNT, description: 'Calls in flight to the participant from this instance now.', example: 3 })
  inFlight!: number;

  @ApiProperty({ ...COUNT, description: 'Calls waiting here for a free slot.', example: 0 })
  queued!: number;

  @ApiProperty({ type: 'integer', format: 'int32', minimum: 1, maximum: 10_000, description: 'The adaptive limit on calls in flight now (at most `maxInFlight`).', example: 16 })
  limit!: number;

  @ApiProperty({
    type: 'integer',
    format: 'int32',
    minimum: 1,
    maximum: 10_000,
    description: "The ceiling in force on this instance: the operator's `maxInFlight`, or PARTICIPANT_MAX_IN_FLIGHT.",
    example: 128,
  })
  maxInFlight!: number;

  @ApiProperty({
    enum: ['closed', 'open', 'half_open'],
    enumName: 'BreakerState',
    description: 'closed: calls go through; open: none is sent (after BREAKER_FAILURE_THRESHOLD transient failures in a row); half_open: one probe call may go, or is out.',
    example: 'closed',
  })
  breaker!: BreakerStateView;

  @ApiProperty({ ...COUNT, nullable: true, description: 'An open breaker: milliseconds until it lets a probe call through; null when not open.', example: null })
  breakerRetryInMs!: number | null;

  @ApiProperty({ type: CallsNotMadeSchema })
  notMade!: { breakerOpen: number; queueFull: number; queueTimeout: number };
}

@ApiSchema({ name: 'ParticipantAdminView' })
export class ParticipantAdminViewSchema extends ParticipantViewSchema implements ParticipantAdminView {
  @ApiProperty({
    type: String,
    maxLength: 32,
    pattern: '^(key#[0-9]+|unconfigured key)$',
    nullable: true,
    description: '`key#<n>` of the API key that owns the name (`unconfigured key` when that key is gone); null when unowned.',
    example: 'key#3',
  })
  owner!: string | null;

  @ApiProperty({ ...COUNT, example: 1 })
  secretGeneration!: number;

  @ApiProperty({ ...DATE_TIME, nullable: true, description: 'During a rotation: until when the previous secret is signed with too.' })
  previousSecretValidUntil!: string | null;

  @ApiProperty({
    type: String,
    isArray: true,
    maxLength: 64,
    pattern: "^[!#$%&'*+.^_`|~0-9a-z-]{1,64}$",
    maxItems: 16,
    description: 'Names of the headers sent on its calls, lower-case (values never shown).',
    example: ['x-gateway-key'],
  })
  callHeaderNames!: string[];

  @ApiProperty({
    type: 'integer',
    format: 'int32',
    minimum: 1,
    maximum: 10_000,
    nullable: true,
    description: "The operator's ceiling on calls in flight to it from each instance (PUT /admin/participants/{name}/limits); null: PARTICIPANT_MAX_IN_FLIGHT.",
    example: null,
  })
  maxInFlight!: number | null;

  @ApiProperty({ type: ParticipantLoadViewSchema, nullable: true, description: 'Its gate on the instance that answered; null until that instance has called it.' })
  load!: ParticipantLoadView | null;
}

@ApiSchema({ name: 'SecretRotationView' })
export class SecretRotationViewSchema extends ParticipantAdminViewSchema implements SecretRotationView {
  @ApiProperty({ ...SECRET, description: 'The new secret.', example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  signingSecret!: string;
}

@ApiSchema({ name: 'TransactionEventView' })
export class TransactionEventViewSchema implements TransactionEventView {
  @ApiProperty(DATE_TIME)
  at!: string;

  @ApiProperty({ type: String, maxLength: 64, pattern: '^[a-z0-9_]+$', description: 'created, branch_added, call, status, attention, …', example: 'status' })
  type!: string;

  @ApiProperty({ ...ID, nullable: true, example: null })
  branchId!: string | null;

  @ApiProperty({ type: String, maxLength: 32, pattern: '^[a-z_]+$', nullable: true, description: 'A global or branch status.', example: 'active' })
  from!: string | null;

  @ApiProperty({ type: String, maxLength: 32, pattern: '^[a-z_]+$', nullable: true, description: 'A global or branch status.', example: 'committing' })
  to!: string | null;

  @ApiProperty({ ...ANY, description: ANY_JSON, example: { reason: null } })
  detail!: Json;
}

@ApiSchema({ name: 'LockedRow' })
export class LockedRowSchema {
  @ApiProperty({ type: String, maxLength: 200, description: "The participant's table.", example: 'accounts' })
  table!: string;

  @ApiProperty({ type: String, maxLength: 500, description: "The row's primary key, as a JSON array.", example: '["alice"]' })
  key!: string;
}

@ApiSchema({ name: 'BranchLocksView', description: "The rows an AT branch's prepare locked in its participant's database, and for how long." })
export class BranchLocksViewSchema implements BranchLocksView {
  @ApiProperty({ ...COUNT, description: 'How many rows it locked; `rows` names the first 20.', example: 1 })
  count!: number;

  @ApiProperty({ type: [LockedRowSchema], maxItems: AT_LOCKS_REPORTED })
  rows!: { table: string; key: string }[];

  @ApiProperty({ ...DATE_TIME, description: "When the prepare's answer was recorded." })
  since!: string;

  @ApiProperty({ ...DATE_TIME, nullable: true, description: "When the branch's phase 2 finished (committed or rolled back), releasing them; null while held." })
  releasedAt!: string | null;

  @ApiProperty({ ...BIG_COUNT, description: 'Milliseconds held: until now while held, until `releasedAt` after.', example: 120 })
  heldMs!: number;
}

@ApiSchema({ name: 'BranchDetailView' })
export class BranchDetailViewSchema extends BranchViewSchema implements BranchDetailView {
  @ApiPropertyOptional({ type: BranchLocksViewSchema, description: 'Only on an AT branch whose prepare reported the rows it locked.' })
  locks?: BranchLocksView;
}

@ApiSchema({ name: 'TransactionDetailView' })
export class TransactionDetailViewSchema extends TransactionViewSchema implements TransactionDetailView {
  @ApiProperty({ type: [BranchDetailViewSchema], maxItems: LIMITS.maxBranches, description: 'At most MAX_BRANCHES_PER_TRANSACTION (a setting, at most 1000).' })
  declare branches: BranchDetailView[];

  @ApiProperty({ type: [TransactionEventViewSchema], description: 'The full history, oldest first.' })
  events!: TransactionEventView[];

  @ApiProperty({
    type: String,
    nullable: true,
    pattern: '^[0-9a-f]{32}$',
    maxLength: 32,
    example: '4bf92f3577b34da6a3ce929d0e0e4736',
    description: "The W3C trace id of the trace the transaction was begun in (its begin's traceparent); null when the begin carried none.",
  })
  traceId!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    format: 'uri',
    // TRACE_UI_URL is at most 2048 characters, and each {traceId} in it grows by 23.
    maxLength: 8192,
    example: 'http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736',
    description: "The trace in the operator's tracing UI: the coordinator's TRACE_UI_URL with the trace id filled in; null without either.",
  })
  traceUrl!: string | null;
}

@ApiSchema({ name: 'HeldLockView', description: 'An AT branch holding row locks now.' })
export class HeldLockViewSchema implements HeldLockView {
  @ApiProperty({ ...ID, example: 'order-4711' })
  gid!: string;

  @ApiProperty({ ...ID, example: 'b1' })
  branchId!: string;

  @ApiProperty({ ...NAME, example: 'bank-a' })
  participant!: string;

  @ApiProperty({ ...NAME, example: 'at-debit' })
  action!: string;

  @ApiProperty({ enum: GLOBAL_STATUSES, enumName: 'GlobalStatus', example: 'active' })
  transactionStatus!: GlobalStatus;

  @ApiProperty({ ...COUNT, description: 'How many rows it locked; `rows` names the first 20.', example: 1 })
  count!: number;

  @ApiProperty({ type: [LockedRowSchema], maxItems: AT_LOCKS_REPORTED })
  rows!: { table: string; key: string }[];

  @ApiProperty({ ...DATE_TIME, description: "When the prepare's answer was recorded." })
  since!: string;

  @ApiProperty({ ...BIG_COUNT, description: 'Milliseconds held so far.', example: 120 })
  heldMs!: number;
}

@ApiSchema({ name: 'HeldLocksPage' })
export class HeldLocksPageSchema implements HeldLocksPage {
  @ApiProperty({ type: [HeldLockViewSchema], maxItems: 200, description: 'Held longest first.' })
  items!: HeldLockView[];

  @ApiProperty({ ...CURSOR, description: 'Pass as `cursor` for the next page; null on the last one.' })
  nextCursor!: string | null;
}

@ApiSchema({ name: 'TransactionPage' })
export class TransactionPageSchema implements TransactionPage {
  @ApiProperty({ type: [TransactionViewSchema], maxItems: 200, description: 'Newest first.' })
  items!: TransactionView[];

  @ApiProperty({ ...CURSOR, description: 'Pass as `cursor` for the next page; null on the last one.' })
  nextCursor!: string | null;
}

@ApiSchema({ name: 'TransactionCounts' })
export class TransactionCountsSchema implements TransactionCounts {
  @ApiProperty({ type: 'object', maxProperties: GLOBAL_STATUSES.length, additionalProperties: BIG_COUNT, example: { committed: 12, active: 1 } })
  byStatus!: Record<string, number>;

  @ApiProperty({ type: 'object', maxProperties: MODES.length, additionalProperties: BIG_COUNT, example: { tcc: 10, saga: 3 } })
  byMode!: Record<string, number>;

  @ApiProperty({ ...BIG_COUNT, example: 0 })
  needsAttention!: number;

  @ApiProperty({ ...BIG_COUNT, example: 13 })
  total!: number;
}

@ApiSchema({ name: 'InstanceLoadView', description: "The admission control of the instance that answered: each instance counts its own, since it started." })
export class InstanceLoadViewSchema implements InstanceLoadView {
  @ApiProperty({ type: String, pattern: '^[A-Za-z0-9_.:-]{1,128}$', maxLength: 128, description: 'INSTANCE_ID of the instance that answered.', example: 'coordinator-1' })
  instanceId!: string;

  @ApiProperty({ ...BIG_COUNT, description: 'Begins admitted.', example: 1200 })
  admitted!: number;

  @ApiProperty({ ...BIG_COUNT, description: 'Begins refused with 503 OVERLOADED.', example: 0 })
  refused!: number;

  @ApiProperty({ ...BIG_COUNT, description: 'Participant calls waiting for a slot on this instance now, all participants together.', example: 0 })
  queued!: number;
}

@ApiSchema({ name: 'AdminStats', description: 'The transactions in the log (every instance\'s), and the admission control of the instance that answered.' })
export class AdminStatsSchema extends TransactionCountsSchema implements AdminStats {
  @ApiProperty({ type: InstanceLoadViewSchema })
  instance!: InstanceLoadView;
}

/** What an error message or field may be at most; the exception filter cuts longer ones (a field name can come from the body). */
export const MAX_ERROR_MESSAGE = 1024;
export const MAX_ERROR_FIELD = 256;

/** Every error answer (PROTOCOL.md 3); some carry more fields (branchId, status, lastError, transaction, details). */
@ApiSchema({ name: 'ErrorBody', description: 'Every error answer: `{ statusCode, error: CODE, message }`, plus `field` for bad input; each response narrows `error` to its codes.' })
export class ErrorBodySchema {
  @ApiProperty({ type: 'integer', format: 'int32', minimum: 400, maximum: 599, example: 404 })
  statusCode!: number;

  @ApiProperty({ enum: Object.values(ErrorCode), enumName: 'ErrorCode', example: ErrorCode.TX_NOT_FOUND })
  error!: ErrorCode;

  @ApiProperty({ type: String, maxLength: MAX_ERROR_MESSAGE, example: 'transaction order-4711 not found' })
  message!: string;

  @ApiPropertyOptional({ type: String, maxLength: MAX_ERROR_FIELD, description: 'The field at fault, for bad input.', example: 'branches.0.participant' })
  field?: string;

  @ApiPropertyOptional({ ...ID, description: 'BRANCH_FAILED, BRANCH_UNKNOWN: the branch.' })
  branchId?: string;

  @ApiPropertyOptional({ enum: BRANCH_STATUSES, enumName: 'BranchStatus', description: 'BRANCH_FAILED: `failed`; BRANCH_UNKNOWN: `pending`.' })
  status?: BranchStatus;

  @ApiPropertyOptional({ ...ANY, description: `BRANCH_FAILED, BRANCH_UNKNOWN: the participant's last answer. ${ANY_JSON}` })
  lastError?: Json;

  @ApiPropertyOptional({ type: () => TransactionViewSchema, description: 'TX_NOT_ACTIVE, TX_ALREADY_DECIDED, CANNOT_COMMIT: the transaction as it is now.' })
  transaction?: TransactionView;

  @ApiPropertyOptional({ type: 'integer', format: 'int32', minimum: 1, maximum: 30, description: 'OVERLOADED: seconds to wait before beginning again, as the Retry-After header says.' })
  retryAfterSeconds?: number;

  @ApiPropertyOptional({ type: () => HealthDetailsSchema, description: 'NOT_READY: each dependency and its state.' })
  details?: Record<string, { status: string }>;
}

@ApiSchema({ name: 'HealthIndicator' })
export class HealthIndicatorSchema {
  @ApiProperty({ enum: ['up', 'down'], example: 'up' })
  status!: string;

  @ApiPropertyOptional({ type: String, maxLength: 1024, description: 'Why it is down.' })
  message?: string;

  @ApiPropertyOptional({ ...BIG_COUNT, description: 'Milliseconds the check took.' })
  responseTime?: number;
}

@ApiSchema({ name: 'HealthDetails', description: 'The dependencies checked: `database`, and `redis` when configured.' })
export class HealthDetailsSchema {
  @ApiPropertyOptional({ type: HealthIndicatorSchema })
  database?: HealthIndicatorSchema;

  @ApiPropertyOptional({ type: HealthIndicatorSchema })
  redis?: HealthIndicatorSchema;
}

/** @nestjs/terminus's answer to a health check. */
@ApiSchema({ name: 'HealthResult' })
export class HealthResultSchema {
  @ApiProperty({ enum: ['ok', 'error', 'shutting_down'], example: 'ok' })
  status!: string;

  @ApiPropertyOptional({ type: HealthDetailsSchema, nullable: true, description: 'The dependencies that are up.' })
  info?: HealthDetailsSchema | null;

  @ApiPropertyOptional({ type: HealthDetailsSchema, nullable: true, description: 'The dependencies that are down.' })
  error?: HealthDetailsSchema | null;

  @ApiProperty({ type: HealthDetailsSchema, description: 'Every dependency checked.' })
  details!: HealthDetailsSchema;
}
