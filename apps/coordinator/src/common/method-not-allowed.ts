import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ErrorCode } from '@nest-dtx/protocol';

/** The methods the API may serve a path with, in the order an Allow header lists them. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** The methods some route of `fastify` takes `path` with (empty: no route has the path). */
export function methodsOfPath(fastify: FastifyInstance, path: string): string[] {
  return METHODS.filter((method) => fastify.findRoute({ method, url: path }) !== null);
}

/**
 * An onRequest hook: a request no route takes, on a path that routes take with other methods,
 * is 405 METHOD_NOT_ALLOWED with Allow (RFC 9110 15.5.6) rather than 404. Only requests the
 * router did not match pay the look-up, one per method.
 */
export function methodNotAllowed(fastify: FastifyInstance): (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void {
  return (request, reply, done) => {
    if (!request.is404) return done();
    const allowed = methodsOfPath(fastify, request.url.split('?', 1)[0]);
    if (allowed.length === 0) return done();
    void reply
      .code(405)
      .header('Allow', allowed.join(', '))
      .send({ statusCode: 405, error: ErrorCode.METHOD_NOT_ALLOWED, message: `${request.method} is not allowed here; this path takes ${allowed.join(', ')}` });
  };
}
