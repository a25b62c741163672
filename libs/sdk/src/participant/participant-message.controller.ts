import { Controller, type Type } from '@nestjs/common';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { checkSignatureHeaders, messageSignatureHeaders, splitSignedMessage, type MicroserviceReply, type PresentedSignatureHeaders } from '@nest-dtx/protocol';
import { BranchDispatcher } from './branch-dispatcher.js';
import { CallVerifier } from './call-verifier.js';
import { participantError, ParticipantErrorCode } from './participant-errors.js';

/**
 * The NestJS microservices side of the participant protocol (PROTOCOL.md 5.2): the same
 * verification and dispatcher as HTTP, replying `{ outcome: 'ok', result }` or
 * `{ outcome: 'failed', message }`. The call's data carries the three signature values in a
 * `headers` member; what is signed is the data without it (5.5). A refused signature or a
 * malformed call is an error `{ statusCode, error: <ParticipantErrorCode>, message }` (401 for
 * signatures), which the coordinator treats as transient; nothing runs.
 */
export function createParticipantMessageController(pattern: string | Record<string, string>): Type<unknown> {
  @Controller()
  class ParticipantMessageController {
    constructor(
      private readonly verifier: CallVerifier,
      private readonly dispatcher: BranchDispatcher,
    ) {}

    @MessagePattern(pattern)
    async handle(@Payload() data: unknown): Promise<MicroserviceReply> {
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
        if (!read.ok) throw new RpcException(participantError(read.code, read.reason));
        throw new RpcException(participantError(ParticipantErrorCode.BAD_REQUEST, 'the call cannot be verified: its data is nested too deeply'));
      }
      const check = this.verifier.check(signed.headers, signed.body);
      if (!check.ok) throw new RpcException(check.error);
      const answer = await this.dispatcher.dispatch(check.body);
      switch (answer.kind) {
        case 'ok':
          return { outcome: 'ok', result: answer.result };
        case 'failed':
          return { outcome: 'failed', message: answer.message };
        case 'invalid':
          throw new RpcException(participantError(ParticipantErrorCode.INVALID_PHASE_CALL, answer.message));
      }
    }
  }
  return ParticipantMessageController;
}
