import { ValidationPipe, type ValidationError } from '@nestjs/common';
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
