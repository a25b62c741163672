import { applyDecorators, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiParam, ApiResponse, type ApiResponseOptions } from '@nestjs/swagger';
import { ID_PATTERN, NAME_PATTERN, type ErrorCode } from '@nest-dtx/protocol';

/**
 * What a route declares about its own answers. The answers every route of a kind can give
 * (bad JSON, a missing key, an oversized body, the rate limit, a lost database…) are not
 * declared here but in one table, common-answers.ts, applied to every operation when the
 * document is built.
 */

/** One error status a route itself may answer, with the stable codes (PROTOCOL.md 3) it carries there. */
export interface DocumentedError {
  status: number;
  codes: readonly ErrorCode[];
  why?: string;
}

/** Metadata read when the document is built: the route's own error answers. */
export const RouteErrors = Reflector.createDecorator<readonly DocumentedError[]>();

/** Metadata read when the document is built: the route reads or writes the transaction log (so may answer 503 STORE_UNAVAILABLE). */
export const StoreBacked = Reflector.createDecorator<true>();

/** Metadata read when the document is built: the route passes admission control (so may answer 503 OVERLOADED). */
export const AdmissionControlled = Reflector.createDecorator<true>();

/** The route's own error answers; their bodies are the ErrorBody with `error` one of `codes`. */
export function ApiErrors(...errors: DocumentedError[]): MethodDecorator {
  return RouteErrors(errors);
}

/** A controller whose routes use Postgres: a lost connection is 503 STORE_UNAVAILABLE with Retry-After. */
export function ApiStoreBacked(): ClassDecorator & MethodDecorator {
  return StoreBacked(true);
}

/** A route admission control may refuse before it writes anything: 503 OVERLOADED with Retry-After. */
export function ApiAdmissionControlled(): MethodDecorator {
  return AdmissionControlled(true);
}

/** Documents a success answer and its body (and headers it always carries). */
export function ApiAnswer(status: number, type: Type | [Type], description: string, headers?: ApiResponseOptions['headers']): MethodDecorator & ClassDecorator {
  return ApiResponse({ status, type, description, ...(headers ? { headers } : {}) });
}

/** The `{gid}` path parameter of a route about one transaction. */
export function ApiGidParam(): MethodDecorator {
  return ApiParam({ name: 'gid', description: 'The transaction id.', schema: { type: 'string', pattern: ID_PATTERN.source, maxLength: 128, example: 'order-4711' } });
}

/** The `{name}` path parameter of a route about one participant. */
export function ApiParticipantNameParam(): MethodDecorator {
  return applyDecorators(ApiParam({ name: 'name', description: 'The participant name.', schema: { type: 'string', pattern: NAME_PATTERN.source, maxLength: 64, example: 'account' } }));
}

/** No transaction with that gid. */
export const TX_NOT_FOUND: DocumentedError = { status: 404, codes: ['TX_NOT_FOUND'] };
