import { Injectable } from '@nestjs/common';
import { ErrorCode, MODE_PHASES, type Mode, type ModePhases } from '@app/protocol';
import { ApiError } from '../common/api-error.js';

/**
 * What one mode means to the engine: its phase names and the order of its calls. The engine,
 * store, invoker and recovery are shared; a mode plugs in as one processor.
 */
export interface ModeProcessor {
  readonly mode: Mode;
  readonly phases: ModePhases;
  /** Whether phase-2 calls of this mode may go to all branches at once. */
  readonly parallelPhase2: boolean;
}

@Injectable()
export class TccProcessor implements ModeProcessor {
  readonly mode = 'tcc' as const;
  readonly phases = MODE_PHASES.tcc;
  readonly parallelPhase2 = true;
}

@Injectable()
export class ModeProcessors {
  private readonly byMode: Partial<Record<Mode, ModeProcessor>>;

  constructor(tcc: TccProcessor) {
    this.byMode = { tcc };
  }

  get(mode: Mode): ModeProcessor {
    const processor = this.byMode[mode];
    if (!processor) {
      throw new ApiError(400, ErrorCode.MODE_NOT_SUPPORTED, `mode ${mode} is not supported yet`, { field: 'mode' });
    }
    return processor;
  }
}
