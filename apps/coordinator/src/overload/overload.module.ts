import { Module } from '@nestjs/common';
import { ParticipantGates } from './participant-gates.service.js';

/**
 * The one set of participant gates (admission control, per-participant limits, breakers) of
 * this instance: the engine's calls, recovery, begins, the registry, the admin counts and the
 * metrics all read the same gates.
 */
@Module({ providers: [ParticipantGates], exports: [ParticipantGates] })
export class OverloadModule {}
