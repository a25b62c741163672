import { Injectable } from '@nestjs/common';
import { MODE_PHASES } from '@nest-dtx/protocol';
import { BranchCaller } from '../branch-caller.js';
import { TransactionWriter } from '../transaction-writer.js';
import { BranchPhasesProcessor } from './branch-phases.processor.js';

/** 2PC: prepare, then commit or rollback (participants may back it with Postgres prepared transactions). */
@Injectable()
export class TwoPhaseCommitProcessor extends BranchPhasesProcessor {
  readonly mode = '2pc' as const;
  readonly phases = MODE_PHASES['2pc'];

  constructor(writer: TransactionWriter, caller: BranchCaller) {
    super(writer, caller);
  }
}
