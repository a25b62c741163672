import type { IncomingHttpHeaders } from 'node:http';
import { Controller, Param, Post, Req, Res, UseFilters, type Type } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { AT_LOCKS_HEADER, checkSignatureHeaders, encodeBranchLocks, SIGNATURE_HEADERS, type PresentedSignatureHeaders } from '@nest-dtx/protocol';
import { BranchDispatcher } from './branch-dispatcher.js';
import { CallVerifier } from './call-verifier.js';
import { isJsonContentType, participantError, ParticipantErrorCode } from './participant-errors.js';
import { errorAnswerBody, ParticipantHttpExceptionFilter, ParticipantRefusal, jsonAnswer } from './participant-http-errors.js';
import { SemconvAttr } from '../tracing/dtx-tracer.js';
import { CallSources, errorBodyResult, HandleSpan, traceHeadersOf, type HandleResult } from '../tracing/handle-span.js';

/** What the route reads of a request, on Express and Fastify alike (`rawBody` with the app's `rawBody: true`). */
interface ParticipantHttpRequest {
  headers: IncomingHttpHeaders;
  body?: unknown;
  rawBody?: Buffer;
}


/** Ends a call's span with a success the route answers itself (its errors end it where they are caught). */
function answered(span: HandleSpan, status: number, result: HandleResult): void {
  span.set(SemconvAttr.HTTP_RESPONSE_STATUS_CODE, status);
  span.end(result);
}

function signatureHeaders(headers: IncomingHttpHeaders): PresentedSignatureHeaders {
  const { id, timestamp, signature } = SIGNATURE_HEADERS;
  return { [id]: headers[id], [timestamp]: headers[timestamp], [signature]: headers[signature] };
}

/**
 * The content the signature must cover. `rawBody` is exactly the bytes that arrived (Nest sets
 * it, on Express and Fastify, when the app was created with `rawBody: true`). Without it,
 * JSON.stringify of the parsed body. That is sound because the coordinator signs what
 * JSON.stringify wrote, and JSON.stringify(JSON.parse(s)) gives back such an s exactly, so a
 * genuine call verifies; any other bytes (re-spaced, re-ordered, duplicate members) do not.
 * Either way, what runs is parsed from the very content that was verified (CallVerifier),
 * never the body some parser made of something else.
 */
function signedContent(request: ParticipantHttpRequest): Buffer | string | null {
  if (Buffer.isBuffer(request.rawBody)) return request.rawBody;
  try {
    return request.body === undefined ? '' : JSON.stringify(request.body);
  } catch {
    // A body nested deeper than JSON.stringify's stack (the parser took it): never signed, so
    // not verifiable. Null, refused as bad input rather than thrown as a 500.
    return null;
  }
}

/**
 * The HTTP side of PROTOCOL.md 5.1: `POST {path}/{action}/{phase}`. Nothing runs before the
 * call's signature is verified (5.5). 2xx success, 202 ongoing (3.6: `{ "retryAfterMs" }` or
 * `{}`), 409 business failure (refusal, or anti-hanging), 401 a refused signature, 4xx other bad
 * input, 503 DTX_SCHEMA_MISSING when the SDK's tables are not in the database, 500 anything
 * unexpected (both transient; ONGOING_NOT_SUPPORTED when an XaAction or AtAction answered
 * ongoing); every error body is `{ statusCode, error: <ParticipantErrorCode>, message }`. Built
 * per module so the route prefix comes from the options.
 *
 * The route sets each answer's status and JSON content type through Nest's HTTP adapter (Express
 * or Fastify alike) and returns its body, which Nest sends once the host app's interceptors have
 * seen it (the response stays Nest's: `passthrough`), with the status set here. A success is the
 * result as JSON text under a JSON content type: given a bare string or number,
 * both adapters would send it as text (the result `"42"` would come back as the number 42), and
 * given `null` nothing at all; the result of an action that returned nothing is the JSON
 * `null`. A refusal is thrown as a ParticipantRefusal, which the controller's filter answers
 * with its body.
 *
 * Each call has its span (HandleSpan, kind SERVER), a child of the coordinator's call through
 * the `traceparent` / `tracestate` headers; the business runs with it active.
 */
export function createParticipantHttpController(path: string): Type<unknown> {
  // The route as OpenTelemetry's `http.route` names it (without the app's global prefix, which the controller does not know).
  const calls = CallSources.http(`/${path.split('/').filter(Boolean).join('/')}/:action/:phase`);

  @Controller(path)
  @UseFilters(ParticipantHttpExceptionFilter)
  class ParticipantHttpController {
    constructor(
      private readonly verifier: CallVerifier,
      private readonly dispatcher: BranchDispatcher,
      private readonly adapterHost: HttpAdapterHost,
    ) {}

    @Post(':action/:phase')
    async handle(
      @Param('action') action: string,
      @Param('phase') phase: string,
      @Req() request: ParticipantHttpRequest,
      @Res({ passthrough: true }) response: unknown,
    ): Promise<string> {
      const span = HandleSpan.start(calls, traceHeadersOf(request.headers));
      try {
        return await this.answer(action, phase, request, response, span);
      } catch (error) {
        // What the controller's filter will send for it.
        const answer = errorAnswerBody(error);
        span.set(SemconvAttr.HTTP_RESPONSE_STATUS_CODE, answer.statusCode);
        span.end(errorBodyResult(answer), error instanceof ParticipantRefusal ? undefined : error);
        throw error;
      }
    }

    /** The call verified, run, and answered: its body, with the status set; a refusal thrown. */
    private async answer(action: string, phase: string, request: ParticipantHttpRequest, response: unknown, span: HandleSpan): Promise<string> {
      // The signature first, whatever the content type (PROTOCOL.md 5.5: a call without a good
      // signature is a 401). A body the JSON parser did not read verifies as nothing, so such a
      // call cannot pass; the content type is checked after, for a call that did.
      const headers = signatureHeaders(request.headers);
      const content = signedContent(request);
      if (content === null) {
        const read = checkSignatureHeaders(headers, Math.floor(Date.now() / 1000));
        if (!read.ok) throw new ParticipantRefusal(participantError(read.code, read.reason));
        throw new ParticipantRefusal(participantError(ParticipantErrorCode.BAD_REQUEST, 'the call cannot be verified: its body is nested too deeply'));
      }
      const check = this.verifier.check(headers, content);
      if (!check.ok) throw new ParticipantRefusal(check.error);
      if (!isJsonContentType(request.headers['content-type'])) {
        throw new ParticipantRefusal(participantError(ParticipantErrorCode.UNSUPPORTED_MEDIA_TYPE, 'a phase call is application/json in UTF-8 (PROTOCOL.md 5.1)'));
      }
      const call = check.body as { action?: unknown; phase?: unknown } | null;
      if (call?.action !== action || call?.phase !== phase) {
        throw new ParticipantRefusal(participantError(ParticipantErrorCode.INVALID_PHASE_CALL, 'the path and the body name different actions or phases'));
      }
      span.identify(check.body);
      const outcome = await span.run(() => this.dispatcher.dispatch(check.body));
      const adapter = this.adapterHost.httpAdapter;
      switch (outcome.kind) {
        case 'ok':
          if (outcome.locks) adapter.setHeader(response, AT_LOCKS_HEADER, encodeBranchLocks(outcome.locks));
          answered(span, 200, { outcome: 'ok' });
          return jsonAnswer(adapter, response, 200, outcome.result ?? null);
        case 'ongoing':
          answered(span, 202, { outcome: 'ongoing' });
          return jsonAnswer(adapter, response, 202, outcome.retryAfterMs === undefined ? {} : { retryAfterMs: outcome.retryAfterMs });
        case 'failed':
          throw new ParticipantRefusal(participantError(ParticipantErrorCode.BUSINESS_FAILURE, outcome.message, { details: outcome.details }));
        case 'invalid':
          throw new ParticipantRefusal(participantError(ParticipantErrorCode.INVALID_PHASE_CALL, outcome.message));
        case 'schema_missing':
          throw new ParticipantRefusal(participantError(ParticipantErrorCode.DTX_SCHEMA_MISSING, outcome.message));
        case 'ongoing_not_supported':
          throw new ParticipantRefusal(participantError(ParticipantErrorCode.ONGOING_NOT_SUPPORTED, outcome.message));
      }
    }
  }
  return ParticipantHttpController;
}
