import { Injectable } from '@nestjs/common';
import { CoordinatorConfig } from '../../config/coordinator.config.js';
import { ParticipantsService } from '../../participants/participants.service.js';
import { DatabaseTime } from '../../store/database-clock.js';
import { BranchPhasesProcessor, branchPhasesRules } from './branch-phases.processor.js';
import { TransactionMode } from './transaction-mode.decorator.js';

export const TCC_RULES = branchPhasesRules('tcc');

/** TCC: try, then confirm or cancel. */
@Injectable()
@TransactionMode('tcc')
export class TccProcessor extends BranchPhasesProcessor {
  readonly kind = 'tcc' as const;
  readonly rules = TCC_RULES;

  constructor(participants: ParticipantsService, config: CoordinatorConfig, clock: DatabaseTime) {
    super(participants, config, clock);
  }
}
