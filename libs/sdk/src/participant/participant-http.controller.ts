import { Body, Controller, HttpCode, Param, Post, Res, type Type } from '@nestjs/common';
import type { Response } from 'express';
import { BranchDispatcher } from './branch-dispatcher.js';

/**
 * The HTTP side of PROTOCOL.md 5.1: `POST {path}/{action}/{phase}`. 2xx success, 409 business
 * failure (refusal, or anti-hanging), 400 a malformed call, 5xx anything unexpected (transient).
 * Built per module so the route prefix comes from the options.
 */
export function createParticipantHttpController(path: string): Type<unknown> {
  @Controller(path)
  class ParticipantHttpController {
    constructor(private readonly dispatcher: BranchDispatcher) {}

    @Post(':action/:phase')
    @HttpCode(200)
    async handle(
      @Param('action') action: string,
      @Param('phase') phase: string,
      @Body() body: unknown,
      @Res() res: Response,
    ): Promise<void> {
      const call = body as { action?: unknown; phase?: unknown } | null;
      const answer =
        call?.action === action && call?.phase === phase
          ? await this.dispatcher.dispatch(body)
          : ({ kind: 'invalid', message: 'the path and the body name different actions or phases' } as const);
      switch (answer.kind) {
        case 'ok':
          res.status(200).json(answer.result ?? null);
          return;
        case 'failed':
          res.status(409).json({ error: 'BUSINESS_FAILURE', message: answer.message, details: answer.details });
          return;
        case 'invalid':
          res.status(400).json({ error: 'INVALID_PHASE_CALL', message: answer.message });
          return;
      }
    }
  }
  return ParticipantHttpController;
}
