// class-transformer's @Type reads design types through Reflect.getMetadata as the classes are
// defined: load the polyfill first, whatever the importer loaded before.
import 'reflect-metadata';
import { ApiField, ApiOptionalField } from './api-field.js';
import { Type } from 'class-transformer';
import {
  Allow,
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsDateString,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { GLOBAL_STATUSES, ID_PATTERN, MODES, NAME_PATTERN, PHASES, type GlobalStatus, type Mode, type Phase } from '../states.js';
import type { Json, JsonObject } from '../views.js';

export const LIMITS = {
  /**
   * The ceiling of branches (saga steps) in one transaction the DTO accepts; the coordinator's
   * MAX_BRANCHES_PER_TRANSACTION (default 100) is the limit that applies, at begin and at add.
   */
  maxBranches: 1000,
  minTimeoutMs: 100,
  maxTimeoutMs: 24 * 60 * 60 * 1000,
  defaultTimeoutMs: 60_000,
} as const;

const ID_MESSAGE = '$property must match [A-Za-z0-9_.:-]{1,128}';
const NAME_MESSAGE = '$property must match [A-Za-z0-9_.:-]{1,64}';

/** ID_PATTERN and NAME_PATTERN as OpenAPI writes patterns (PROTOCOL.md 3.1, 4). */
export const ID_PATTERN_SOURCE = ID_PATTERN.source;
export const NAME_PATTERN_SOURCE = NAME_PATTERN.source;

/** ID_PATTERN and NAME_PATTERN with the length they allow, as OpenAPI wants both said. */
const ID_FIELD = { pattern: ID_PATTERN_SOURCE, maxLength: 128 } as const;
const NAME_FIELD = { pattern: NAME_PATTERN_SOURCE, maxLength: 64 } as const;
/** Longest `from` / `to` filter: an ISO-8601 date and time with microseconds and an offset is 32 characters. */
const DATE_FILTER_MAX_LENGTH = 40;

/** An opaque JSON object in the OpenAPI document: payloads and metadata are not the coordinator's business. */
export const JSON_OBJECT_SCHEMA = { type: 'object', additionalProperties: true } as const;

/** What to call: a registered participant's action, and its payload. */
export class ActionCallDto {
  @ApiField({ description: 'A registered participant (POST /v1/participants).', ...NAME_FIELD, example: 'account' })
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  participant!: string;

  @ApiField({ description: 'One of the actions the participant registered for this mode.', ...NAME_FIELD, example: 'debit' })
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  action!: string;

  @ApiOptionalField({
    ...JSON_OBJECT_SCHEMA,
    description: 'Sent unchanged to the participant in every phase of the branch.',
    default: {},
    example: { accountId: 'alice', amount: 100 },
  })
  @IsOptional()
  @IsObject()
  payload?: JsonObject;
}

/** One branch of a one-shot tcc/2pc transaction, or of an interactive add (branchId optional there). */
export class BranchSpecDto extends ActionCallDto {
  @ApiOptionalField({
    description: 'Unique within the transaction; default `b1`, `b2`, … in the listed order (one-shot) or generated (interactive).',
    ...ID_FIELD,
    example: 'b1',
  })
  @IsOptional()
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  branchId?: string;
}

/** msg: the action of the caller's service that answers whether its local transaction committed (PROTOCOL.md 3.1). */
export class MsgCheckDto {
  @ApiField({ description: "The caller's service, a registered participant.", ...NAME_FIELD, example: 'order' })
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  participant!: string;

  @ApiField({
    description: 'Its action for mode msg; the coordinator POSTs `{endpoint}/{action}/check`. The SDK registers `dtx-msg-check`.',
    ...NAME_FIELD,
    example: 'dtx-msg-check',
  })
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  action!: string;
}

/** One saga step; its name is its branchId. */
export class SagaStepDto extends ActionCallDto {
  @ApiField({ description: "The step's name, also its branchId.", ...ID_FIELD, example: 'debit' })
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  name!: string;

  @ApiOptionalField({
    type: [String],
    ...ID_FIELD,
    maxItems: LIMITS.maxBranches,
    description: 'With `concurrent: true`: the names of the steps this one waits for (a DAG). Ignored for sequential sagas.',
    example: [],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(LIMITS.maxBranches)
  @ArrayUnique()
  @IsString({ each: true })
  @Matches(ID_PATTERN, { each: true, message: 'each of $property must match [A-Za-z0-9_.:-]{1,128}' })
  dependsOn?: string[];
}

/** POST /v1/transactions (PROTOCOL.md 3.1). */
export class BeginTransactionDto {
  @ApiField({
    enum: MODES,
    enumName: 'Mode',
    description: 'tcc: try/confirm/cancel; 2pc: prepare/commit/rollback; saga: execute/compensate; msg: a two-phase message, `execute` after the commit.',
    example: 'tcc',
  })
  @IsIn(MODES)
  mode!: Mode;

  @ApiOptionalField({
    description: 'Client-chosen id; sending the same gid and body again returns the existing transaction (200), a different body is 409 GID_CONFLICT. Generated when absent.',
    ...ID_FIELD,
    example: 'order-4711',
  })
  @IsOptional()
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  gid?: string;

  @ApiOptionalField({
    type: 'integer',
    format: 'int32',
    description: 'Milliseconds until the deadline; a transaction still active then is rolled back (reason timeout).',
    minimum: LIMITS.minTimeoutMs,
    maximum: LIMITS.maxTimeoutMs,
    default: LIMITS.defaultTimeoutMs,
    example: 60000,
  })
  @IsOptional()
  @IsInt()
  @Min(LIMITS.minTimeoutMs)
  @Max(LIMITS.maxTimeoutMs)
  timeoutMs?: number;

  @ApiOptionalField({ ...JSON_OBJECT_SCHEMA, description: 'Any JSON object, stored and shown back.', example: { orderId: 'o-1' } })
  @IsOptional()
  @IsObject()
  metadata?: JsonObject;

  @ApiOptionalField({
    type: [BranchSpecDto],
    description:
      'tcc/2pc: present, one-shot (phase 1 on every branch, then commit or rollback); absent, interactive. msg: required, the branches that receive `execute` after the commit.',
    minItems: 1,
    maxItems: LIMITS.maxBranches,
  })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIMITS.maxBranches)
  @ValidateNested({ each: true })
  @Type(() => BranchSpecDto)
  branches?: BranchSpecDto[];

  @ApiOptionalField({ type: [SagaStepDto], description: 'saga only, required there.', minItems: 1, maxItems: LIMITS.maxBranches })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIMITS.maxBranches)
  @ValidateNested({ each: true })
  @Type(() => SagaStepDto)
  steps?: SagaStepDto[];

  @ApiOptionalField({
    type: MsgCheckDto,
    description: 'msg only, required there: asked at the deadline whether the local transaction committed (2xx: deliver; 409: roll back).',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => MsgCheckDto)
  check?: MsgCheckDto;

  @ApiOptionalField({
    description: 'msg only: deliver the branches at once, with no local transaction of the caller (a durable fan-out). The transaction starts `committing`.',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  submit?: boolean;

  @ApiOptionalField({ description: 'saga: run each step once the steps in its `dependsOn` are done, instead of in the listed order.', default: false })
  @IsOptional()
  @IsBoolean()
  concurrent?: boolean;

  @ApiOptionalField({
    description: 'Hold the response until the transaction is terminal (up to a server-side limit).',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  wait?: boolean;
}

/** POST /v1/transactions/{gid}/branches (PROTOCOL.md 3.2). */
export class AddBranchDto extends BranchSpecDto {}

/** POST /v1/transactions/{gid}/commit | rollback (PROTOCOL.md 3.3). */
export class DecideDto {
  @ApiOptionalField({ description: 'Hold the response until phase 2 is over (committed / rolled_back), up to a server-side limit.', default: false })
  @IsOptional()
  @IsBoolean()
  wait?: boolean;
}

/** What a reported outcome says the phase's final answer was (PROTOCOL.md 3.6). */
export const REPORTED_OUTCOMES = ['ok', 'failed'] as const;
export type ReportedOutcome = (typeof REPORTED_OUTCOMES)[number];

/** POST /v1/transactions/{gid}/branches/{branchId}/outcome (PROTOCOL.md 3.6). */
export class ReportOutcomeDto {
  @ApiField({ enum: PHASES, enumName: 'Phase', description: 'The phase whose call was answered 202 (ongoing).', example: 'try' })
  @IsIn(PHASES)
  phase!: Phase;

  @ApiField({
    enum: REPORTED_OUTCOMES,
    enumName: 'ReportedOutcome',
    description: '`ok`: the effect of a 2xx answer to that call; `failed`: the effect of a 409.',
    example: 'ok',
  })
  @IsIn(REPORTED_OUTCOMES)
  outcome!: ReportedOutcome;

  @ApiOptionalField({
    'x-any-json': true,
    description: '`ok`: kept as the branch `result` (phase 1), as the body of a 2xx would be; `failed`: kept as its `lastError`, as the body of a 409 would be. Any JSON; default null.',
    example: { approvedBy: 'ann' },
  })
  @Allow()
  result?: Json;
}

export class GidParamDto {
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  gid!: string;
}

/** The paging of the admin lists: a page size, and the keyset cursor a previous page returned. */
export abstract class AdminPageQueryDto {
  @ApiOptionalField({ type: 'integer', format: 'int32', minimum: 1, maximum: 200, description: 'Page size.' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiOptionalField({ description: 'The `nextCursor` of the previous page.', pattern: '^[A-Za-z0-9_-]{1,600}$', maxLength: 600 })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,600}$/, { message: 'cursor is not a cursor this API returned' })
  cursor?: string;
}

/** GET /admin/transactions query (PROTOCOL.md 6). */
export class ListTransactionsQueryDto extends AdminPageQueryDto {
  @ApiOptionalField({ enum: GLOBAL_STATUSES, enumName: 'GlobalStatus' })
  @IsOptional()
  @IsIn(GLOBAL_STATUSES)
  status?: GlobalStatus;

  @ApiOptionalField({ enum: MODES, enumName: 'Mode' })
  @IsOptional()
  @IsIn(MODES)
  mode?: Mode;

  @ApiOptionalField({ description: 'Only transactions with a branch on this participant.', ...NAME_FIELD })
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  participant?: string;

  /** `true`: only transactions flagged for attention; `false`: only the others. */
  @ApiOptionalField({ enum: ['true', 'false'], description: '`true`: only transactions flagged for attention; `false`: only the others.' })
  @IsOptional()
  @IsIn(['true', 'false'])
  attention?: 'true' | 'false';

  /** Created at or after (ISO-8601). */
  @ApiOptionalField({ format: 'date-time', maxLength: DATE_FILTER_MAX_LENGTH, description: 'Created at or after (ISO-8601). Years 0001 to 9999.' })
  @IsOptional()
  @MaxLength(DATE_FILTER_MAX_LENGTH)
  @IsDateString()
  from?: string;

  /** Created before (ISO-8601). */
  @ApiOptionalField({ format: 'date-time', maxLength: DATE_FILTER_MAX_LENGTH, description: 'Created before (ISO-8601). Years 0001 to 9999.' })
  @IsOptional()
  @MaxLength(DATE_FILTER_MAX_LENGTH)
  @IsDateString()
  to?: string;

}
