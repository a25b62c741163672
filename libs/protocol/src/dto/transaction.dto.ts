import { Type } from 'class-transformer';
import {
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
  Min,
  ValidateNested,
} from 'class-validator';
import { GLOBAL_STATUSES, ID_PATTERN, MODES, NAME_PATTERN, type GlobalStatus, type Mode } from '../states.js';
import type { JsonObject } from '../views.js';

export const LIMITS = {
  maxBranches: 100,
  minTimeoutMs: 100,
  maxTimeoutMs: 24 * 60 * 60 * 1000,
  defaultTimeoutMs: 60_000,
} as const;

const ID_MESSAGE = '$property must match [A-Za-z0-9_.:-]{1,128}';
const NAME_MESSAGE = '$property must match [A-Za-z0-9_.:-]{1,64}';

/** What to call: a registered participant's action, and its payload. */
export class ActionCallDto {
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  participant!: string;

  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  action!: string;

  @IsOptional()
  @IsObject()
  payload?: JsonObject;
}

/** One branch of a one-shot tcc/2pc transaction, or of an interactive add (branchId optional there). */
export class BranchSpecDto extends ActionCallDto {
  @IsOptional()
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  branchId?: string;
}

/** One saga step; its name is its branchId. */
export class SagaStepDto extends ActionCallDto {
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  name!: string;

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
  @IsIn(MODES)
  mode!: Mode;

  @IsOptional()
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  gid?: string;

  @IsOptional()
  @IsInt()
  @Min(LIMITS.minTimeoutMs)
  @Max(LIMITS.maxTimeoutMs)
  timeoutMs?: number;

  @IsOptional()
  @IsObject()
  metadata?: JsonObject;

  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIMITS.maxBranches)
  @ValidateNested({ each: true })
  @Type(() => BranchSpecDto)
  branches?: BranchSpecDto[];

  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIMITS.maxBranches)
  @ValidateNested({ each: true })
  @Type(() => SagaStepDto)
  steps?: SagaStepDto[];

  @IsOptional()
  @IsBoolean()
  concurrent?: boolean;

  @IsOptional()
  @IsBoolean()
  wait?: boolean;
}

/** POST /v1/transactions/{gid}/branches (PROTOCOL.md 3.2). */
export class AddBranchDto extends BranchSpecDto {}

/** POST /v1/transactions/{gid}/commit | rollback (PROTOCOL.md 3.3). */
export class DecideDto {
  @IsOptional()
  @IsBoolean()
  wait?: boolean;
}

export class GidParamDto {
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  gid!: string;
}

/** GET /admin/transactions query (PROTOCOL.md 6). */
export class ListTransactionsQueryDto {
  @IsOptional()
  @IsIn(GLOBAL_STATUSES)
  status?: GlobalStatus;

  @IsOptional()
  @IsIn(MODES)
  mode?: Mode;

  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  participant?: string;

  /** `true`: only transactions flagged for attention; `false`: only the others. */
  @IsOptional()
  @IsIn(['true', 'false'])
  attention?: 'true' | 'false';

  /** Created at or after (ISO-8601). */
  @IsOptional()
  @IsDateString()
  from?: string;

  /** Created before (ISO-8601). */
  @IsOptional()
  @IsDateString()
  to?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,400}$/, { message: 'cursor is not a cursor this API returned' })
  cursor?: string;
}
