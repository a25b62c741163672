import { Injectable } from '@nestjs/common';
import type { CallOutcome, Phase } from '@app/protocol';
import { ParticipantInvoker } from '../invoker/participant-invoker.service.js';
import { ParticipantsService } from '../participants/participants.service.js';
import type { BranchRecord, LoadedTx } from '../transactions/transaction.store.js';

/** Calls one phase of one branch on its registered participant. */
@Injectable()
export class BranchCaller {
  constructor(
    private readonly participants: ParticipantsService,
    private readonly invoker: ParticipantInvoker,
  ) {}

  /** An unregistered participant is a transient failure: it may register later. */
  async call(loaded: LoadedTx, branch: BranchRecord, phase: Phase): Promise<CallOutcome> {
    const participant = await this.participants.find(branch.participant);
    if (!participant) return { kind: 'transient', error: `participant ${branch.participant} is not registered` };
    return this.invoker.call(participant, {
      gid: loaded.tx.gid,
      branchId: branch.branchId,
      mode: loaded.tx.mode,
      action: branch.action,
      phase,
      payload: branch.payload,
    });
  }

  callAll(loaded: LoadedTx, branches: readonly BranchRecord[], phase: Phase): Promise<CallOutcome[]> {
    return Promise.all(branches.map((b) => this.call(loaded, b, phase)));
  }
}
