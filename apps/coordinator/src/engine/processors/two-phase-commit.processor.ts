import { Injectable } from '@nestjs/common';
import { CoordinatorConfig } from '../../config/coordinator.config.js';
import { ParticipantsService } from '../../participants/participants.service.js';
import { DatabaseTime } from '../../store/database-clock.js';
import { BranchPhasesProcessor, branchPhasesRules } from './branch-phases.processor.js';
import { TransactionMode } from './transaction-mode.decorator.js';

export const TWO_PHASE_COMMIT_RULES = branchPhasesRules('2pc');

/** 2PC: prepare, then commit or rollback (participants may back it with Postgres prepared transactions). */
@Injectable()
@TransactionMode('2pc')
export class TwoPhaseCommitProcessor extends BranchPhasesProcessor {
  readonly kind = '2pc' as const;
  readonly rules = TWO_PHASE_COMMIT_RULES;

  constructor(participants: ParticipantsService, config: CoordinatorConfig, clock: DatabaseTime) {
    super(participants, config, clock);
  }
}
