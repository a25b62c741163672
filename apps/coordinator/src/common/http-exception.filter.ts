import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ErrorCode, type ErrorBody } from '@nest-dtx/protocol';
import { DependencyOutages } from '../logging/dependency-outages.js';
import { fastifyErrorBody } from './http-body.js';
import { isStoreUnavailable } from './store-unavailable.js';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.VALIDATION_FAILED,
  401: ErrorCode.UNAUTHENTICATED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  405: ErrorCode.METHOD_NOT_ALLOWED,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  429: ErrorCode.RATE_LIMITED,
};

/**
 * Errors of the HTTP server before a route runs: Fastify's (reading the body, see
 * common/http-body.ts) by their `code`, and Express's body-parser (Nest apps built on Express,
 * as in some tests) by their `type`.
 */
function bodyParserError(exception: unknown): ErrorBody | null {
  // Nest wraps them in an HttpException whose `cause` is the server's error.
  const error = exception instanceof HttpException && exception.cause ? exception.cause : exception;
  const fastify = fastifyErrorBody(error);
  if (fastify) return fastify;
  if (typeof error !== 'object' || error === null || !('type' in error)) return null;
  const type = error.type;
  if (type === 'entity.parse.failed') {
    return { statusCode: 400, error: ErrorCode.INVALID_JSON, message: 'request body is not valid JSON' };
  }
  if (type === 'entity.too.large') {
    return { statusCode: 413, error: ErrorCode.PAYLOAD_TOO_LARGE, message: 'request body is too large' };
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return { statusCode: 415, error: ErrorCode.UNSUPPORTED_MEDIA_TYPE, message: 'unsupported body encoding' };
  }
  return null;
}

/** Longest message and field an error body carries (the OpenAPI document says so): both may quote the request. */
const MAX_MESSAGE = 1024;
const MAX_FIELD = 256;

/** The body with its message and field cut to their documented bounds. */
function bounded(body: ErrorBody): ErrorBody {
  const cut = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
  const result: ErrorBody = { ...body, message: cut(body.message, MAX_MESSAGE) };
  if (typeof body.field === 'string') result.field = cut(body.field, MAX_FIELD);
  return result;
}

/** Turns every error into the body PROTOCOL.md 3 fixes: { statusCode, error: CODE, message }. */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpExceptionFilter');

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly outages: DependencyOutages,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const response: unknown = host.switchToHttp().getResponse();
    const body = bounded(this.toBody(exception));
    const adapter = this.adapterHost.httpAdapter;
    if (body.error === ErrorCode.STORE_UNAVAILABLE) adapter.setHeader(response, 'Retry-After', '1');
    // An overloaded instance says how long its queues need (503 OVERLOADED): in the body and as Retry-After.
    if (typeof body.retryAfterSeconds === 'number') adapter.setHeader(response, 'Retry-After', String(body.retryAfterSeconds));
    adapter.reply(response, body, body.statusCode);
  }

  private toBody(exception: unknown): ErrorBody {
    const parserError = bodyParserError(exception);
    if (parserError) return parserError;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const payload = exception.getResponse();
      if (typeof payload === 'object' && payload !== null && 'error' in payload && 'statusCode' in payload) {
        const candidate = payload as ErrorBody;
        if (Object.values(ErrorCode).includes(candidate.error)) return candidate;
      }
      // Terminus's readiness answer: keep its details for the operator.
      if (status === 503 && typeof payload === 'object' && payload !== null && 'details' in payload) {
        return { statusCode: 503, error: ErrorCode.NOT_READY, message: 'not ready', details: (payload).details };
      }
      const raw = typeof payload === 'string' ? payload : (payload as { message?: unknown }).message;
      // Nest's own exceptions carry a string or a list of strings.
      const message = typeof raw === 'string' ? raw : Array.isArray(raw) ? raw.map(String).join('; ') : exception.message;
      return { statusCode: status, error: CODE_BY_STATUS[status] ?? ErrorCode.INTERNAL, message };
    }
    if (isStoreUnavailable(exception)) {
      // Not a bug: Postgres went away mid-request. What is durable stands; the client sends again.
      // Every request fails the same way during an outage: one warn line for all of them.
      this.outages.postgres.failed(exception);
      return { statusCode: 503, error: ErrorCode.STORE_UNAVAILABLE, message: 'the transaction log is unavailable; send the same request again' };
    }
    // The stack goes in its own field, so the line stays one JSON object.
    if (exception instanceof Error) this.logger.error(exception.message, exception.stack);
    else this.logger.error(String(exception));
    return { statusCode: 500, error: ErrorCode.INTERNAL, message: 'internal error' };
  }
}
