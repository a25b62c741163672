import { Injectable, Logger } from '@nestjs/common';
import { of, throwError, type Observable } from 'rxjs';
import {
  checkSignatureHeaders,
  messageSignatureHeaders,
  messageTraceHeaders,
  splitSignedMessage,
  type MicroserviceReply,
  type PresentedSignatureHeaders,
} from '@nest-dtx/protocol';
import { answerResult, errorBodyResult, HandleSpan, type CallSource } from '../tracing/handle-span.js';
import { BranchDispatcher } from './branch-dispatcher.js';
import { CallVerifier } from './call-verifier.js';
import { participantError, ParticipantErrorCode, type ParticipantErrorBody } from './participant-errors.js';

/**
 * What Nest's RPC exception filter sends for an error that is no RpcException (its
 * BaseRpcExceptionFilter.handleUnknownError), kept so the wire is the same as when the handler
 * was a @MessagePattern controller.
 */
const UNKNOWN_ERROR = { status: 'error', message: 'Internal server error' } as const;

/** PROTOCOL.md 3.6 on the message transports: accepted, outcome not known yet (the HTTP 202). */
type OngoingReply = { outcome: 'ongoing'; retryAfterMs?: number };

/** A call refused before or instead of running: the error the transport replies with. */
class Refusal extends Error {
  constructor(readonly body: ParticipantErrorBody) {
    super(body.message);
  }
}

/**
 * The NestJS microservices side of the participant protocol (PROTOCOL.md 5.2): the same
 * verification and dispatcher as HTTP, replying `{ outcome: 'ok', result }`,
 * `{ outcome: 'failed', message }` or, for a business method that answered ongoing() (3.6),
 * `{ outcome: 'ongoing', retryAfterMs? }`. The call's data carries the three signature values in a
 * `headers` member; what is signed is the data without it (5.5). A refused signature or a
 * malformed call is an error `{ statusCode, error: <ParticipantErrorCode>, message }` (401 for
 * signatures), which the coordinator treats as transient; nothing runs. So is a call that
 * found the SDK's tables missing (503 DTX_SCHEMA_MISSING).
 *
 * A plain handler (connectParticipantTransport registers it on the server with addHandler,
 * under the pattern the options give at run time), so it answers through the transport's
 * Server.send directly: an error is an observable that errors with the body, which the server
 * sends as the reply's `err`, just as Nest's RPC exception filter did with an RpcException's
 * body; anything unexpected is logged and sent as that filter's `Internal server error`.
 *
 * Each call has its span (HandleSpan; `source` says which transport it came by), a child of the
 * coordinator's call through the `traceparent` / `tracestate` its data's `headers` member
 * carries beside the signature values; the business runs with it active.
 */
@Injectable()
export class ParticipantMessageHandler {
  private readonly logger = new Logger('RpcExceptionsHandler');

  constructor(
    private readonly verifier: CallVerifier,
    private readonly dispatcher: BranchDispatcher,
  ) {}

  async handle(data: unknown, source: CallSource): Promise<Observable<MicroserviceReply | OngoingReply>> {
    const span = HandleSpan.start(source, messageTraceHeaders(data));
    try {
      return of(await this.answer(data, span));
    } catch (error) {
      if (error instanceof Refusal) {
        span.end(errorBodyResult(error.body));
        return throwError(() => error.body);
      }
      span.end({ outcome: 'error', errorType: ParticipantErrorCode.INTERNAL }, error);
      this.logger.error(error);
      return throwError(() => UNKNOWN_ERROR);
    }
  }

  private async answer(data: unknown, span: HandleSpan): Promise<MicroserviceReply | OngoingReply> {
    let signed: { headers: PresentedSignatureHeaders; body: string };
    try {
      // Data that is no object carries no headers: it is checked (and refused) as unsigned.
      signed = splitSignedMessage(data) ?? { headers: {}, body: JSON.stringify(data) ?? '' };
    } catch {
      // JSON.stringify throws (RangeError) on data nested deeper than the stack allows, which
      // the transport's JSON.parse accepted. Such data was never signed (the coordinator signs
      // what JSON.stringify wrote): refuse it as bad input, not as a 500-like internal error;
      // as a 401 when its signature headers already fail (PROTOCOL.md 5.5).
      const read = checkSignatureHeaders(messageSignatureHeaders(data), Math.floor(Date.now() / 1000));
      if (!read.ok) throw new Refusal(participantError(read.code, read.reason));
      throw new Refusal(participantError(ParticipantErrorCode.BAD_REQUEST, 'the call cannot be verified: its data is nested too deeply'));
    }
    const check = this.verifier.check(signed.headers, signed.body);
    if (!check.ok) throw new Refusal(check.error);
    span.identify(check.body);
    const answer = await span.run(() => this.dispatcher.dispatch(check.body));
    // Ended with the answer here: a refusal thrown below finds it ended (HandleSpan.end is once).
    span.end(answerResult(answer));
    switch (answer.kind) {
      case 'ok':
        return answer.locks ? { outcome: 'ok', result: answer.result, locks: answer.locks } : { outcome: 'ok', result: answer.result };
      case 'failed':
        return { outcome: 'failed', message: answer.message };
      case 'ongoing':
        return answer.retryAfterMs === undefined ? { outcome: 'ongoing' } : { outcome: 'ongoing', retryAfterMs: answer.retryAfterMs };
      case 'ongoing_not_supported':
        throw new Refusal(participantError(ParticipantErrorCode.ONGOING_NOT_SUPPORTED, answer.message));
      case 'invalid':
        throw new Refusal(participantError(ParticipantErrorCode.INVALID_PHASE_CALL, answer.message));
      case 'schema_missing':
        throw new Refusal(participantError(ParticipantErrorCode.DTX_SCHEMA_MISSING, answer.message));
    }
  }
}
