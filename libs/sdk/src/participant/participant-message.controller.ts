import { Controller, type Type } from '@nestjs/common';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import type { MicroserviceReply } from '@app/protocol';
import { BranchDispatcher } from './branch-dispatcher.js';

/**
 * The NestJS microservices side of the participant protocol (PROTOCOL.md 5.2): the same
 * dispatcher as HTTP, replying `{ outcome: 'ok', result }` or `{ outcome: 'failed', message }`.
 * A malformed call is an error, which the coordinator treats as transient.
 */
export function createParticipantMessageController(pattern: string | Record<string, string>): Type<unknown> {
  @Controller()
  class ParticipantMessageController {
    constructor(private readonly dispatcher: BranchDispatcher) {}

    @MessagePattern(pattern)
    async handle(@Payload() body: unknown): Promise<MicroserviceReply> {
      const answer = await this.dispatcher.dispatch(body);
      switch (answer.kind) {
        case 'ok':
          return { outcome: 'ok', result: answer.result };
        case 'failed':
          return { outcome: 'failed', message: answer.message };
        case 'invalid':
          throw new RpcException(answer.message);
      }
    }
  }
  return ParticipantMessageController;
}
