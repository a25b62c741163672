import {
  Catch,
  HttpException,
  Inject,
  Injectable,
  Logger,
  type ArgumentsHost,
  type ExceptionFilter,
  type HttpServer,
  type OnModuleInit,
} from '@nestjs/common';
import { HttpAdapterHost, type AbstractHttpAdapter } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { checkSignatureHeaders, type Json } from '@nest-dtx/protocol';
import { participantError, ParticipantErrorCode, participantRoutePattern, requestErrorBody, type ParticipantErrorBody } from './participant-errors.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';

/** The content type of every answer of the participant routes. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Writes a JSON answer through Nest's HTTP adapter, so the SDK's routes work on Express and
 * Fastify alike. The body is serialised here: adapters send a bare string or number as text,
 * which would make the result `"42"` come back as the number 42.
 */
/**
 * A route's answer for Nest to send (`@Res({ passthrough: true })`): its status and JSON content
 * type set now, its JSON text returned, so the host app's interceptors still see it go.
 */
export function jsonAnswer(adapter: HttpServer, response: unknown, status: number, body: Json): string {
  adapter.status(response, status);
  adapter.setHeader(response, 'content-type', JSON_CONTENT_TYPE);
  return JSON.stringify(body);
}

export function replyJson(adapter: HttpServer, response: unknown, status: number, body: Json | ParticipantErrorBody): void {
  adapter.setHeader(response, 'content-type', JSON_CONTENT_TYPE);
  adapter.reply(response, JSON.stringify(body), status);
}

/** The participant route's refusal of a call: answered with `body` as it is, and its statusCode (401, 409, 4xx). */
export class ParticipantRefusal extends HttpException {
  constructor(readonly body: ParticipantErrorBody) {
    super(body, body.statusCode);
  }
}

/**
 * Errors thrown while the SDK's route runs, as `{ statusCode, error, message }`: the route's
 * own refusals (ParticipantRefusal) with their body; another 4xx HttpException (a guard of the
 * host app, say) as BAD_REQUEST with its status; anything else is unexpected (the database
 * went away): 500 INTERNAL, transient for the coordinator, logged like Nest's own filter does.
 */
@Catch()
@Injectable()
export class ParticipantHttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('DtxParticipant');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const response: unknown = host.switchToHttp().getResponse();
    const body = errorAnswerBody(exception);
    if (body.error === ParticipantErrorCode.INTERNAL) {
      this.logger.error(exception instanceof Error ? exception.message : String(exception), exception instanceof Error ? exception.stack : undefined);
    }
    replyJson(this.adapterHost.httpAdapter, response, body.statusCode, body);
  }
}

/**
 * The answer of the SDK's routes to what was thrown while they ran (the filter above sends it;
 * the route's span records it): a refusal's own body, another 4xx HttpException as
 * BAD_REQUEST with its status, anything else 500 INTERNAL.
 */
export function errorAnswerBody(exception: unknown): ParticipantErrorBody {
  if (exception instanceof ParticipantRefusal) return exception.body;
  if (exception instanceof HttpException && exception.getStatus() < 500) {
    return { ...participantError(ParticipantErrorCode.BAD_REQUEST, exception.message), statusCode: exception.getStatus() };
  }
  return participantError(ParticipantErrorCode.INTERNAL, 'internal error');
}

/**
 * Refusals of the HTTP server before the SDK's route runs (body-parser: malformed JSON, a body
 * over the limit, an unknown charset or encoding; the router: bad percent-encoding) answered
 * with the SDK's codes instead of Nest's `{ error: 'Bad Request' }`. Nest hands those errors
 * to global filters only (a filter on the controller never sees them: routing has not
 * happened), and a global filter would take over the app's own error answers. So this adds an
 * Express error handler for the SDK's route paths, after Nest's routes and before Nest's own
 * error handler (a call without a valid-looking signature is still answered 401): at onModuleInit, which Nest runs after it registered the body parser and the
 * routes and before its error handler (NestApplication.init). Express only: on Fastify these
 * stay Nest's answers, `{ statusCode, message }` with the same 4xx but no `error` code.
 */
@Injectable()
export class ParticipantRequestErrors implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
  ) {}

  onModuleInit(): void {
    // Undefined in an app without HTTP (a microservice or a testing module).
    const adapter = this.adapterHost.httpAdapter as AbstractHttpAdapter | undefined;
    if (!adapter || adapter.getType() !== 'express') return;
    const route = participantRoutePattern(this.options.path ?? 'tx');
    const app = adapter.getInstance<{ use(handler: (error: unknown, req: Request, res: Response, next: NextFunction) => void): void }>();
    const verifying = this.options.verifySignatures !== false;
    app.use((error: unknown, req: Request, res: Response, next: NextFunction): void => {
      const body = req.method === 'POST' && route.test(req.path) && !res.headersSent ? requestErrorBody(error) : null;
      if (!body) {
        next(error);
        return;
      }
      // A signature that is missing, unreadable or stale is a 401 whether or not the body could
      // be read (PROTOCOL.md 5.5); only a call whose headers pass gets the parser's own refusal.
      const headers = verifying ? checkSignatureHeaders(req.headers, Math.floor(Date.now() / 1000)) : null;
      const answer = headers && !headers.ok ? participantError(headers.code, headers.reason) : body;
      res.status(answer.statusCode).json(answer);
    });
  }
}
