import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, type ErrorBody } from '@nest-dtx/protocol';
import { ApiError } from './api-error.js';

/** Largest request body accepted; past it, 413 PAYLOAD_TOO_LARGE. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

const invalidJson = (): ApiError => new ApiError(400, ErrorCode.INVALID_JSON, 'request body is not valid JSON');
const unsupportedEncoding = (): ApiError => new ApiError(415, ErrorCode.VALIDATION_FAILED, 'unsupported body encoding');

/** `charset=...` of a Content-Type, lower-case, if it names one. */
function charsetOf(contentType: string | undefined): string | undefined {
  const match = contentType ? /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType) : null;
  return match ? match[1].toLowerCase() : undefined;
}

/**
 * Parses a JSON request body as the API always has (it ran on Express's body-parser before):
 * an empty body is `{}`; the top level must be an object or an array; UTF-8 only, not
 * compressed (415 otherwise). Exported for its tests.
 */
export function parseJsonBody(text: string, contentType: string | undefined, contentEncoding: string | undefined): unknown {
  const charset = charsetOf(contentType);
  if ((charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') || (contentEncoding !== undefined && contentEncoding.toLowerCase() !== 'identity')) {
    throw unsupportedEncoding();
  }
  let start = 0;
  while (start < text.length && (text[start] === ' ' || text[start] === '\t' || text[start] === '\n' || text[start] === '\r')) start++;
  if (start === text.length) return {};
  if (text[start] !== '{' && text[start] !== '[') throw invalidJson();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalidJson();
  }
}

/**
 * Bodies are JSON or ignored. application/json (with any parameters) is parsed by parseJsonBody; any other content type is read (within the limit) and left out, so
 * the route validates an absent body, as it did on Express.
 */
export function registerBodyParsers(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, (request, body, done) => {
    try {
      done(null, parseJsonBody(body as string, request.headers['content-type'], request.headers['content-encoding']));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  fastify.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT_BYTES }, (_request, _body, done) => done(null, undefined));
}

/** Fastify's own errors before a route runs (body reading, bad URLs), as the API's error codes. */
export function fastifyErrorBody(error: unknown): ErrorBody | null {
  if (typeof error !== 'object' || error === null || !('code' in error) || typeof error.code !== 'string' || !error.code.startsWith('FST_')) return null;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { statusCode: 413, error: ErrorCode.PAYLOAD_TOO_LARGE, message: 'request body is too large' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { statusCode: 400, error: ErrorCode.INVALID_JSON, message: 'request body is not valid JSON' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { statusCode: 415, error: ErrorCode.VALIDATION_FAILED, message: 'unsupported request body' };
    case 'FST_ERR_BAD_URL':
      return { statusCode: 400, error: ErrorCode.VALIDATION_FAILED, message: 'the request path is not valid percent-encoding' };
    default: {
      const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
      return status < 500 ? { statusCode: status, error: status === 404 ? ErrorCode.NOT_FOUND : ErrorCode.VALIDATION_FAILED, message: 'bad request' } : null;
    }
  }
}

/** Fastify's `frameworkErrors`: router errors (a bad URL) answer with the API's error body. */
export function frameworkErrorAnswer(error: Error, _request: FastifyRequest, reply: FastifyReply): void {
  const body = fastifyErrorBody(error) ?? { statusCode: 400, error: ErrorCode.VALIDATION_FAILED, message: 'bad request' };
  void reply.code(body.statusCode).send(body);
}
