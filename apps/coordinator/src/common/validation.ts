import { ValidationPipe, type ArgumentMetadata, type PipeTransform, type ValidationError } from '@nestjs/common';
import { ErrorCode } from '@app/protocol';
import { ApiError } from './api-error.js';

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

/** Strict validation: unknown fields are refused, and the 400 names the field at fault. */
export function createValidationPipe(): ValidationPipe {
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

/** Nesting depth of a parsed JSON value, measured without recursion (so no depth can overflow the stack). */
export function jsonDepth(value: unknown): number {
  let deepest = 0;
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    const depth = item.depth + 1;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(item.value)) pending.push({ value: child, depth });
  }
  return deepest;
}

/**
 * Refuses request bodies nested deeper than MAX_BODY_DEPTH before the validation pipe runs:
 * class-transformer copies bodies recursively and a deep enough one (a 1 MB body can nest
 * ~150,000 levels) overflows its stack, which would be a 500.
 */
export class BodyDepthPipe implements PipeTransform<unknown, unknown> {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type === 'body' && jsonDepth(value) > MAX_BODY_DEPTH) {
      throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `body is nested deeper than ${MAX_BODY_DEPTH} levels`, { field: 'body' });
    }
    return value;
  }
}
