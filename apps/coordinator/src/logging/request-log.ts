import { Logger } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { structuredMessage } from './log-record.js';

/** `/v1/transactions/{gid}…` and `/admin/transactions/{gid}…`: the routes about one transaction. */
const TRANSACTION_PATH = /^\/(?:v1|admin)\/transactions\/([^/?]+)/;

/** The gid a request path is about, if any, so a request line can be found with its transaction's lines. */
export function gidOfRequestPath(path: string): string | undefined {
  const match = TRANSACTION_PATH.exec(path);
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1]; // not valid percent-encoding: the route answers 400 anyway
  }
}

/** The path of a request URL, without its query. */
const pathOf = (url: string): string => {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
};

/**
 * One line per HTTP request, once its answer is sent, at verbose only: at the default level a
 * line per request would cost more than the transaction itself at high throughput (http-app.ts
 * adds the hook only when LOG_LEVEL=verbose).
 */
export function requestLogging(fastify: FastifyInstance): void {
  const logger = new Logger('HttpRequest');
  fastify.addHook('onResponse', (request, reply, done) => {
    const path = pathOf(request.url);
    logger.verbose(
      structuredMessage(`${request.method} ${path} ${reply.statusCode}`, {
        method: request.method,
        path,
        statusCode: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        gid: gidOfRequestPath(path),
      }),
    );
    done();
  });
}
