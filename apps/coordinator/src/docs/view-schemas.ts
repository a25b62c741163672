/**
 * The answers of the REST API as classes, for the OpenAPI document only: views.ts declares them
 * as interfaces (no runtime trace), and OpenAPI needs something to read decorators from. Each
 * class `implements` its interface, so the compiler keeps the two in step.
 */
import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import {
  ErrorCode,
  TRANSPORTS,
  BRANCH_STATUSES,
  GLOBAL_STATUSES,
  MODES,
  ROLLBACK_REASONS,
  type BranchStatus,
  type GlobalStatus,
  type Mode,
  type RollbackReason,
  type ParticipantAdminView,
  type ParticipantRegistrationView,
  type SecretRotationView,
  type BranchDetailView,
  type BranchLocksView,
  type BranchOutcomeView,
  type BranchView,
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

@ApiSchema({ name: 'BranchView' })
export class BranchViewSchema implements BranchView {
  @ApiProperty({ example: 'b1' })
  branchId!: string;

  @ApiProperty({ example: 'account' })
  participant!: string;

  @ApiProperty({ example: 'debit' })
  action!: string;

  @ApiProperty({ enum: BRANCH_STATUSES, enumName: 'BranchStatus', example: 'committed' })
  status!: BranchStatus;

  @ApiProperty({ type: 'integer', description: 'Calls made to the participant for this branch, all phases.', example: 2 })
  attempts!: number;

  @ApiProperty({ nullable: true, description: `Why phase 1 failed, or the last phase-2 error still unresolved. ${ANY_JSON}`, example: null })
  lastError!: Json;

  @ApiProperty({ nullable: true, description: `The participant's answer to phase 1. ${ANY_JSON}`, example: {} })
  result!: Json;
}

@ApiSchema({ name: 'TransactionView' })
export class TransactionViewSchema implements TransactionView {
  @ApiProperty({ example: 'order-4711' })
  gid!: string;

  @ApiProperty({ enum: MODES, enumName: 'Mode', example: 'tcc' })
  mode!: Mode;

  @ApiProperty({ enum: GLOBAL_STATUSES, enumName: 'GlobalStatus', example: 'committing' })
  status!: GlobalStatus;

  @ApiProperty({ enum: ROLLBACK_REASONS, enumName: 'RollbackReason', nullable: true, description: 'Set on rollback.', example: null })
  reason!: RollbackReason | null;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;

  @ApiProperty({ format: 'date-time' })
  updatedAt!: string;

  @ApiProperty({ format: 'date-time', description: 'createdAt + timeoutMs.' })
  deadline!: string;

  @ApiProperty({ type: 'object', additionalProperties: true, example: {} })
  metadata!: JsonObject;

  @ApiProperty({ description: 'Phase 2 was refused, or retried more than the configured count; still retried.', example: false })
  needsAttention!: boolean;

  @ApiProperty({ type: [BranchViewSchema] })
  branches!: BranchView[];
}

@ApiSchema({ name: 'BranchOutcomeView' })
export class BranchOutcomeViewSchema implements BranchOutcomeView {
  @ApiProperty({ example: 'b1' })
  branchId!: string;

  @ApiProperty({ enum: BRANCH_STATUSES, enumName: 'BranchStatus', example: 'prepared' })
  status!: BranchStatus;

  @ApiProperty({ nullable: true, description: `The participant's JSON body. ${ANY_JSON}`, example: null })
  result!: Json;
}

@ApiSchema({ name: 'ParticipantActionView' })
export class ParticipantActionViewSchema {
  @ApiProperty({ example: 'debit' })
  name!: string;

  @ApiProperty({ enum: MODES, enumName: 'Mode', isArray: true, example: ['tcc', 'saga'] })
  modes!: Mode[];
}

@ApiSchema({ name: 'ParticipantView' })
export class ParticipantViewSchema implements ParticipantView {
  @ApiProperty({ example: 'account' })
  name!: string;

  @ApiProperty({ enum: TRANSPORTS, enumName: 'Transport', example: 'http' })
  transport!: string;

  @ApiProperty({ type: String, nullable: true, example: 'http://127.0.0.1:4001/tx' })
  endpoint!: string | null;

  @ApiProperty({ type: String, nullable: true, example: null })
  host!: string | null;

  @ApiProperty({ type: 'integer', nullable: true, example: null })
  port!: number | null;

  @ApiProperty({ description: 'rabbitmq/nats: a publish target, each action a RabbitMQ queue or NATS JetStream subject the coordinator publishes to.', example: false })
  publish!: boolean;

  @ApiProperty({ type: [ParticipantActionViewSchema] })
  actions!: { name: string; modes: Mode[] }[];

  @ApiProperty({ format: 'date-time' })
  updatedAt!: string;
}

@ApiSchema({ name: 'ParticipantRegistrationView' })
export class ParticipantRegistrationViewSchema extends ParticipantViewSchema implements ParticipantRegistrationView {
  @ApiProperty({ description: 'This participant\'s own secret for verifying the coordinator\'s calls (PROTOCOL.md 5.5); never listed.', example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  signingSecret!: string;
}

@ApiSchema({ name: 'ParticipantAdminView' })
export class ParticipantAdminViewSchema extends ParticipantViewSchema implements ParticipantAdminView {
  @ApiProperty({ type: String, nullable: true, description: '`key#<n>` of the API key that owns the name; null when unowned.', example: 'key#3' })
  owner!: string | null;

  @ApiProperty({ type: 'integer', example: 1 })
  secretGeneration!: number;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'During a rotation: until when the previous secret is signed with too.' })
  previousSecretValidUntil!: string | null;

  @ApiProperty({ type: [String], description: 'Names of the headers sent on its calls (values never shown).', example: ['x-gateway-key'] })
  callHeaderNames!: string[];
}

@ApiSchema({ name: 'SecretRotationView' })
export class SecretRotationViewSchema extends ParticipantAdminViewSchema implements SecretRotationView {
  @ApiProperty({ description: 'The new secret.', example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  signingSecret!: string;
}

@ApiSchema({ name: 'TransactionEventView' })
export class TransactionEventViewSchema implements TransactionEventView {
  @ApiProperty({ format: 'date-time' })
  at!: string;

  @ApiProperty({ description: 'created, branch_added, call, status, attention, …', example: 'status' })
  type!: string;

  @ApiProperty({ type: String, nullable: true, example: null })
  branchId!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'active' })
  from!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'committing' })
  to!: string | null;

  @ApiProperty({ nullable: true, description: ANY_JSON, example: { reason: null } })
  detail!: Json;
}

@ApiSchema({ name: 'LockedRow' })
export class LockedRowSchema {
  @ApiProperty({ description: "The participant's table.", example: 'accounts' })
  table!: string;

  @ApiProperty({ description: "The row's primary key, as a JSON array.", example: '["alice"]' })
  key!: string;
}

@ApiSchema({ name: 'BranchLocksView', description: "The rows an AT branch's prepare locked in its participant's database, and for how long." })
export class BranchLocksViewSchema implements BranchLocksView {
  @ApiProperty({ type: 'integer', description: 'How many rows it locked; `rows` names the first 20.', example: 1 })
  count!: number;

  @ApiProperty({ type: [LockedRowSchema] })
  rows!: { table: string; key: string }[];

  @ApiProperty({ format: 'date-time', description: "When the prepare's answer was recorded." })
  since!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: "When the branch's phase 2 finished (committed or rolled back), releasing them; null while held." })
  releasedAt!: string | null;

  @ApiProperty({ type: 'integer', description: 'Milliseconds held: until now while held, until `releasedAt` after.', example: 120 })
  heldMs!: number;
}

@ApiSchema({ name: 'BranchDetailView' })
export class BranchDetailViewSchema extends BranchViewSchema implements BranchDetailView {
  @ApiPropertyOptional({ type: BranchLocksViewSchema, description: 'Only on an AT branch whose prepare reported the rows it locked.' })
  locks?: BranchLocksView;
}

@ApiSchema({ name: 'TransactionDetailView' })
export class TransactionDetailViewSchema extends TransactionViewSchema implements TransactionDetailView {
  @ApiProperty({ type: [BranchDetailViewSchema] })
  declare branches: BranchDetailView[];

  @ApiProperty({ type: [TransactionEventViewSchema], description: 'The full history, oldest first.' })
  events!: TransactionEventView[];
}

@ApiSchema({ name: 'HeldLockView', description: 'An AT branch holding row locks now.' })
export class HeldLockViewSchema implements HeldLockView {
  @ApiProperty({ example: 'order-4711' })
  gid!: string;

  @ApiProperty({ example: 'b1' })
  branchId!: string;

  @ApiProperty({ example: 'bank-a' })
  participant!: string;

  @ApiProperty({ example: 'at-debit' })
  action!: string;

  @ApiProperty({ enum: GLOBAL_STATUSES, enumName: 'GlobalStatus', example: 'active' })
  transactionStatus!: GlobalStatus;

  @ApiProperty({ type: 'integer', description: 'How many rows it locked; `rows` names the first 20.', example: 1 })
  count!: number;

  @ApiProperty({ type: [LockedRowSchema] })
  rows!: { table: string; key: string }[];

  @ApiProperty({ format: 'date-time', description: "When the prepare's answer was recorded." })
  since!: string;

  @ApiProperty({ type: 'integer', description: 'Milliseconds held so far.', example: 120 })
  heldMs!: number;
}

@ApiSchema({ name: 'HeldLocksPage' })
export class HeldLocksPageSchema implements HeldLocksPage {
  @ApiProperty({ type: [HeldLockViewSchema], description: 'Held longest first.' })
  items!: HeldLockView[];

  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page; null on the last one.' })
  nextCursor!: string | null;
}

@ApiSchema({ name: 'TransactionPage' })
export class TransactionPageSchema implements TransactionPage {
  @ApiProperty({ type: [TransactionViewSchema], description: 'Newest first.' })
  items!: TransactionView[];

  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page; null on the last one.' })
  nextCursor!: string | null;
}

@ApiSchema({ name: 'TransactionCounts' })
export class TransactionCountsSchema implements TransactionCounts {
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, example: { committed: 12, active: 1 } })
  byStatus!: Record<string, number>;

  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, example: { tcc: 10, saga: 3 } })
  byMode!: Record<string, number>;

  @ApiProperty({ type: 'integer', example: 0 })
  needsAttention!: number;

  @ApiProperty({ type: 'integer', example: 13 })
  total!: number;
}

/** Every error answer (PROTOCOL.md 3); some carry more fields (branchId, status, transaction, details). */
@ApiSchema({ name: 'ErrorBody', description: 'Every error answer: `{ statusCode, error: CODE, message }`, plus `field` for bad input.' })
export class ErrorBodySchema {
  @ApiProperty({ type: 'integer', example: 404 })
  statusCode!: number;

  @ApiProperty({ enum: Object.values(ErrorCode), enumName: 'ErrorCode', example: ErrorCode.TX_NOT_FOUND })
  error!: ErrorCode;

  @ApiProperty({ example: 'transaction order-4711 not found' })
  message!: string;

  @ApiPropertyOptional({ description: 'The field at fault, for bad input.', example: 'branches.0.participant' })
  field?: string;
}
