import { Injectable } from '@nestjs/common';
import { ErrorCode, type Mode } from '@nest-dtx/protocol';
import { ApiError } from '../../common/api-error.js';
import type { ModeProcessor } from './mode-processor.js';
import { MsgProcessor } from './msg.processor.js';
import { SagaProcessor } from './saga.processor.js';
import { TccProcessor } from './tcc.processor.js';
import { TwoPhaseCommitProcessor } from './two-phase-commit.processor.js';

/** The processor of each mode. */
@Injectable()
export class ModeProcessors {
  private readonly byMode: Partial<Record<Mode, ModeProcessor>>;

  constructor(tcc: TccProcessor, twoPhaseCommit: TwoPhaseCommitProcessor, saga: SagaProcessor, msg: MsgProcessor) {
    this.byMode = { tcc, '2pc': twoPhaseCommit, saga, msg };
  }

  get(mode: Mode): ModeProcessor {
    const processor = this.byMode[mode];
    if (!processor) throw new ApiError(400, ErrorCode.MODE_NOT_SUPPORTED, `mode ${mode} is not supported`, { field: 'mode' });
    return processor;
  }
}

export const MODE_PROCESSOR_PROVIDERS = [TccProcessor, TwoPhaseCommitProcessor, SagaProcessor, MsgProcessor, ModeProcessors];
