import type { ErrorCode } from '@nest-dtx/protocol';

type UnresolvedCode = Extract<ErrorCode, 'UNKNOWN_PARTICIPANT' | 'UNKNOWN_ACTION'>;

/**
 * A branch (or a message's check-back) names a participant that is not registered, or an
 * action it does not expose in that mode. Thrown where requests become transactions; the API
 * layer words it as a 400 naming `field`.
 */
export class UnresolvedParticipantError extends Error {
  constructor(
    readonly code: UnresolvedCode,
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnresolvedParticipantError';
  }
}
