import { applyDecorators, type Type } from '@nestjs/common';
import { ApiBearerAuth, ApiParam, ApiResponse } from '@nestjs/swagger';
import { ID_PATTERN } from '@nest-dtx/protocol';
import { ErrorBodySchema } from './view-schemas.js';

/** One documented answer: a success with its body class, or an error with the codes it may carry. */
export interface DocumentedError {
  status: number;
  /** The stable codes (PROTOCOL.md 3) this status carries on this route. */
  codes: readonly string[];
  why?: string;
}

/** Documents error answers with the common body `{ statusCode, error, message }`. */
export function ApiErrors(...errors: DocumentedError[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...errors.map(({ status, codes, why }) =>
      ApiResponse({ status, type: ErrorBodySchema, description: `${codes.join(' | ')}${why ? `: ${why}` : ''}` }),
    ),
  );
}

/** Documents a success answer and its body. */
export function ApiAnswer(status: number, type: Type | [Type], description: string): MethodDecorator & ClassDecorator {
  return ApiResponse({ status, type, description });
}

/** What every route can answer with bad input: a 400 naming the field. */
export const BAD_INPUT: DocumentedError = { status: 400, codes: ['VALIDATION_FAILED', 'INVALID_JSON'], why: 'bad input; `field` names it' };
export const TX_NOT_FOUND: DocumentedError = { status: 404, codes: ['TX_NOT_FOUND'] };
export const AUTH_ERRORS: DocumentedError[] = [
  { status: 401, codes: ['UNAUTHENTICATED'], why: 'API keys are configured and the Bearer key is missing or wrong' },
  { status: 403, codes: ['FORBIDDEN'], why: 'the key lacks the role this route needs' },
];

/** A route group behind the Bearer API keys (when configured), with the answers that come with them. */
export function ApiKeyProtected(): ClassDecorator & MethodDecorator {
  return applyDecorators(ApiBearerAuth(), ApiErrors(...AUTH_ERRORS));
}

/** The `{gid}` path parameter of a route about one transaction. */
export function ApiGidParam(): MethodDecorator {
  return ApiParam({ name: 'gid', description: 'The transaction id.', schema: { type: 'string', pattern: ID_PATTERN.source }, example: 'order-4711' });
}
