import { ValidationPipe, type ArgumentMetadata, type PipeTransform, type ValidationError } from '@nestjs/common';
import { AddBranchDto, BeginTransactionDto, CommitDto, DecideDto, ErrorCode, ID_PATTERN, LIMITS, MODES, NAME_PATTERN } from '@nest-dtx/protocol';
import { ApiError } from './api-error.js';
import { describeProblem, fieldName, findJsonProblem } from './storable-json.js';

/** The first failing constraint, with its full path (e.g. `branches.0.participant`). */
function firstFailure(errors: ValidationError[], prefix = ''): { field: string; message: string } | null {
  for (const error of errors) {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const constraints = Object.values(error.constraints ?? {});
    if (constraints.length > 0) {
      return { field, message: constraints[0].replace(error.property, field) };
    }
    const nested = firstFailure(error.children ?? [], field);
    if (nested) return nested;
  }
  return null;
}

type Check = (value: unknown) => boolean;

/** class-validator's IsObject: a non-null object that is not an array. */
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const absentOr = (check: Check): Check => (value) => value === undefined || check(value);
const matches = (pattern: RegExp): Check => (value) => typeof value === 'string' && pattern.test(value);
const isBoolean: Check = (value) => typeof value === 'boolean';

/** An object with only these fields, each passing its check (absent fields are undefined). */
function exactObject(fields: Record<string, Check>): Check {
  const names = Object.keys(fields);
  return (value) => {
    if (!isObject(value)) return false;
    for (const key of Object.keys(value)) if (!Object.hasOwn(fields, key)) return false;
    for (const name of names) if (!fields[name](value[name])) return false;
    return true;
  };
}

/** BranchSpecDto / AddBranchDto's rules (libs/protocol/src/dto/transaction.dto.ts). */
const isBranchSpec = exactObject({
  participant: matches(NAME_PATTERN),
  action: matches(NAME_PATTERN),
  payload: absentOr(isObject),
  branchId: absentOr(matches(ID_PATTERN)),
});

/** MsgCheckDto's rules. */
const isMsgCheck = exactObject({ participant: matches(NAME_PATTERN), action: matches(NAME_PATTERN) });

/** BeginTransactionDto's rules for tcc/2pc/msg bodies; saga steps always take the full path. */
const isBeginWithoutSteps = exactObject({
  mode: (value) => (MODES as readonly unknown[]).includes(value),
  gid: absentOr(matches(ID_PATTERN)),
  timeoutMs: absentOr((value) => Number.isInteger(value) && (value as number) >= LIMITS.minTimeoutMs && (value as number) <= LIMITS.maxTimeoutMs),
  metadata: absentOr(isObject),
  branches: absentOr((value) => Array.isArray(value) && value.length >= 1 && value.length <= LIMITS.maxBranches && value.every(isBranchSpec)),
  steps: (value) => value === undefined,
  concurrent: absentOr(isBoolean),
  check: absentOr(isMsgCheck),
  submit: absentOr(isBoolean),
  wait: absentOr(isBoolean),
});

const isDecide = exactObject({ wait: absentOr(isBoolean) });

/**
 * The hot bodies (begin, add a branch, commit / roll back), checked by hand with the same rules
 * as their DTO's decorators. A body that passes goes to the route as it was parsed, skipping
 * class-transformer and class-validator (most of the CPU of a small request); any other body,
 * valid or not, takes the full ValidationPipe, so every 400 is the one it always was. Each check
 * may only be stricter than the decorators (null, which @IsOptional lets through, goes the long
 * way), never looser: validation.spec.ts compares both on many bodies.
 */
const FAST_CHECKS = new Map<unknown, Check>([
  [BeginTransactionDto, isBeginWithoutSteps],
  [AddBranchDto, isBranchSpec],
  [DecideDto, isDecide],
  // A commit without a workflow's `result`; one with it takes the full path.
  [CommitDto, isDecide],
]);

/** ValidationPipe with the fast path above in front of it. */
export class FastValidationPipe implements PipeTransform<unknown, unknown> {
  constructor(private readonly full: ValidationPipe) {}

  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type === 'body') {
      const check = FAST_CHECKS.get(metadata.metatype);
      // An absent body is {} for ValidationPipe too (commit and rollback need none).
      if (check?.(value ?? {})) return value ?? {};
    }
    return this.full.transform(value, metadata);
  }
}

/** Strict validation: unknown fields are refused, and the 400 names the field at fault. */
export function createValidationPipe(): FastValidationPipe {
  return new FastValidationPipe(createFullValidationPipe());
}

/** class-validator over class-transformer, driven by the DTOs' decorators. */
export function createFullValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors: ValidationError[]) => {
      const failure = firstFailure(errors) ?? { field: 'body', message: 'invalid request' };
      return new ApiError(400, ErrorCode.VALIDATION_FAILED, failure.message, { field: failure.field });
    },
  });
}

/** Deepest JSON nesting a request body may have; the API's own bodies need 4, payloads get the rest. */
export const MAX_BODY_DEPTH = 64;

/** Where a pipe's value sits in the request, for the field a 400 names when the problem is the value itself. */
const ROOT_FIELD: Partial<Record<ArgumentMetadata['type'], string>> = { body: 'body', query: 'query', param: 'param' };

/**
 * Refuses, before the validation pipe runs and before anything is written, request values that
 * could never be stored or validated:
 * - bodies nested deeper than MAX_BODY_DEPTH: class-transformer copies bodies recursively and a
 *   deep enough one (a 1 MB body can nest ~150,000 levels) overflows its stack, a 500;
 * - the NUL character or an unpaired UTF-16 surrogate in any string or key of a body, a query or
 *   a path parameter: Postgres refuses them in `jsonb` and `text` columns, also a 500.
 * Both in one walk of the value (this runs on every begin). The 400 names the field at fault,
 * as the validation pipe's do (`branches.0.payload.note`).
 */
export class BodyDepthPipe implements PipeTransform<unknown, unknown> {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    const root = ROOT_FIELD[metadata.type];
    if (root === undefined) return value;
    const problem = findJsonProblem(value, MAX_BODY_DEPTH);
    if (!problem) return value;
    if (problem.kind === 'too_deep') {
      throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `body is nested deeper than ${MAX_BODY_DEPTH} levels`, { field: 'body' });
    }
    // A single query or path value (`@Query('name')`) is named by its key; a whole body or query by its path in it.
    const field = fieldName(metadata.data ?? '', problem.path) || root;
    throw new ApiError(400, ErrorCode.VALIDATION_FAILED, describeProblem(problem, field, MAX_BODY_DEPTH), { field });
  }
}
