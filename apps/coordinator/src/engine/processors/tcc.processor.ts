import { Injectable } from '@nestjs/common';
import { MODE_PHASES } from '@nest-dtx/protocol';
import { BranchCaller } from '../branch-caller.js';
import { TransactionWriter } from '../transaction-writer.js';
import { BranchPhasesProcessor } from './branch-phases.processor.js';

/** TCC: try, then confirm or cancel. */
@Injectable()
export class TccProcessor extends BranchPhasesProcessor {
  readonly mode = 'tcc' as const;
  readonly phases = MODE_PHASES.tcc;

  constructor(writer: TransactionWriter, caller: BranchCaller) {
    super(writer, caller);
  }
}
