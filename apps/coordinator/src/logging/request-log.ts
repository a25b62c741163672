import { Logger } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
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

/**
 * One line per HTTP request, at verbose only: at the default level a line per request would
 * cost more than the transaction itself at high throughput (main.ts mounts it only when
 * LOG_LEVEL=verbose).
 */
export function requestLogging(): (req: Request, res: Response, next: NextFunction) => void {
  const logger = new Logger('HttpRequest');
  return (req, res, next) => {
    const startedAt = process.hrtime.bigint();
    res.once('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
      logger.verbose(
        structuredMessage(`${req.method} ${req.path} ${res.statusCode}`, {
          method: req.method,
          path: req.path,
          statusCode: res.statusCode,
          durationMs: Math.round(durationMs * 10) / 10,
          gid: gidOfRequestPath(req.path),
        }),
      );
    });
    next();
  };
}
