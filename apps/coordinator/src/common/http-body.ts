import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ErrorCode, type ErrorBody } from '@nest-dtx/protocol';
import { ApiError } from './api-error.js';

/** Largest request body accepted; past it, 413 PAYLOAD_TOO_LARGE. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

const invalidJson = (): ApiError => new ApiError(400, ErrorCode.INVALID_JSON, 'request body is not valid JSON');
const unsupportedEncoding = (): ApiError => new ApiError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'unsupported body encoding');

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

/** Whether a Content-Type is JSON's: application/json, with any parameters (parseJsonBody checks the charset). */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  return contentType.split(';', 1)[0].trim().toLowerCase() === 'application/json';
}

/** Whether the request says it has a body: a non-zero Content-Length, or any Transfer-Encoding. */
export function announcesBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && !/^0+$/.test(length.trim());
}

/**
 * Why a request's body is refused before it is read (415), or null. Every body the API takes
 * is JSON; a body of another type used to be read and dropped, which let a cross-site form post
 * (text/plain, urlencoded, multipart: types a page may send without asking) reach a route as if
 * it had no body. A chunked body counts as non-empty: it is judged by its headers, unread.
 */
export function unsupportedBodyReason(headers: IncomingHttpHeaders): string | null {
  if (!announcesBody(headers) || isJsonContentType(headers['content-type'])) return null;
  const type = headers['content-type'];
  return `a request body must be application/json${type === undefined ? ' (it has no Content-Type)' : `, not ${type.split(';', 1)[0].trim().slice(0, 100)}`}`;
}

/**
 * A body announced past the limit, up to this size, is read to its end (and dropped) before its
 * 413 is sent. Answering first and closing with the body still arriving makes the kernel reset
 * the connection, and the client's write fails (EPIPE) before it reads the 413; past this size
 * the connection is closed without reading, as before.
 */
const DRAIN_BEFORE_413_BYTES = 16 * BODY_LIMIT_BYTES;

const tooLarge = (): ErrorBody => ({ statusCode: 413, error: ErrorCode.PAYLOAD_TOO_LARGE, message: 'request body is too large' });

/**
 * An onRequest hook answering 415 UNSUPPORTED_MEDIA_TYPE for a non-JSON body, before it is read,
 * and 413 PAYLOAD_TOO_LARGE for a Content-Length past BODY_LIMIT_BYTES once the body has arrived
 * (see DRAIN_BEFORE_413_BYTES).
 */
export function refuseNonJsonBody(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const reason = unsupportedBodyReason(request.headers);
  if (reason !== null) {
    void reply.code(415).send({ statusCode: 415, error: ErrorCode.UNSUPPORTED_MEDIA_TYPE, message: reason } satisfies ErrorBody);
    return;
  }
  const length = Number(request.headers['content-length'] ?? 0);
  if (!(length > BODY_LIMIT_BYTES)) return done();
  if (length > DRAIN_BEFORE_413_BYTES) {
    void reply.header('connection', 'close').code(413).send(tooLarge());
    return;
  }
  // Read and drop (the request timeout still bounds how long), then answer.
  const raw = request.raw;
  raw.on('data', () => undefined);
  raw.once('end', () => void reply.code(413).send(tooLarge()));
  raw.once('error', () => raw.destroy());
}

/**
 * Bodies are JSON: application/json (with any parameters) is parsed by parseJsonBody. Other
 * types with a body never get here (refuseNonJsonBody); an empty one (a Content-Type with
 * Content-Length 0) is read as no body, which the routes with optional bodies accept.
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
  fastify.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT_BYTES }, (_request, body, done) => {
    if ((body as Buffer).length === 0) return done(null, undefined);
    done(new ApiError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'a request body must be application/json'), undefined);
  });
}

/** Fastify's own errors before a route runs (body reading, bad URLs), as the API's error codes. */
export function fastifyErrorBody(error: unknown): ErrorBody | null {
  if (typeof error !== 'object' || error === null || !('code' in error) || typeof error.code !== 'string' || !error.code.startsWith('FST_')) return null;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge();
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { statusCode: 400, error: ErrorCode.INVALID_JSON, message: 'request body is not valid JSON' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { statusCode: 415, error: ErrorCode.UNSUPPORTED_MEDIA_TYPE, message: 'unsupported request body' };
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
