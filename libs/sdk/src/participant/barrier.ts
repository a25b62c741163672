import { Inject, Injectable } from '@nestjs/common';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import type { BusinessWork, DtxDataLayer } from '../data-layers/core/data-layer.js';
import { DTX_DATA_LAYER } from './data-layer.provider.js';

export type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';

/**
 * The branch barrier (PROTOCOL.md 5.4) on the participant's data layer: every phase runs in one
 * local transaction with its barrier rows, so that it takes effect once (idempotency), a
 * rollback before its phase 1 changes nothing (null compensation) and a phase 1 after its
 * rollback refuses (anti-hanging). The rules are in data-layers/core/barrier-rules.ts.
 */
@Injectable()
export class BranchBarrier<Tx = unknown> {
  constructor(@Inject(DTX_DATA_LAYER) private readonly dataLayer: DtxDataLayer<Tx>) {}

  /** The data layer, for messages. */
  get description(): string {
    return this.dataLayer.description;
  }

  run(call: PhaseCallBody, business: BusinessWork<Tx>): Promise<BarrierOutcome> {
    return this.dataLayer.runPhase(call, business);
  }
}
