import type { Mode, ModePhases } from '@nest-dtx/protocol';
import type { BranchChange, BranchRecord, EventInput, LoadedTx } from '../../store/records.js';
import type { BranchCaller } from '../branch-caller.js';
import { crashPoint } from '../crash-points.js';
import { branchStatusIn, callEvent, errorOf, lockedRowsOf, machineOf, phase1AnswerOf } from '../machine.js';
import { branchesAwaitingPhase2, transition } from '../state-machine.js';
import type { TransactionWriter } from '../transaction-writer.js';
import type { ModeProcessor } from './mode-processor.js';

/**
 * TCC and 2PC share their shape: phase 1 on every branch in parallel, a decision, phase 2 on
 * every branch in parallel. Only the phase names differ.
 */
export abstract class BranchPhasesProcessor implements ModeProcessor {
  abstract readonly mode: Mode;
  abstract readonly phases: ModePhases;

  constructor(
    protected readonly writer: TransactionWriter,
    protected readonly caller: BranchCaller,
  ) {}

  /**
   * One-shot: phase 1 everywhere, then the decision written in one commit with every answer.
   * Returns the decided transaction, or the current one if another instance moved it meanwhile.
   */
  async start(loaded: LoadedTx): Promise<LoadedTx> {
    const phase = this.phases.phase1;
    const outcomes = await this.caller.callAll(loaded, loaded.branches, phase);
    crashPoint('after_phase1_calls', loaded.tx.gid);

    const answers = loaded.branches.map((b, i) => ({ branchId: b.branchId, answer: phase1AnswerOf(outcomes[i]) }));
    const answered = transition(machineOf(loaded), { type: 'phase1_answered', answers });
    const decided = answered.ok ? transition(answered.tx, { type: 'phase1_finished' }) : answered;
    if (!decided.ok) throw new Error(`one-shot decision refused: ${decided.error}`);

    const next = decided.tx;
    const statusOf = branchStatusIn(next);
    const branches: BranchChange[] = loaded.branches.map((b, i) => {
      const outcome = outcomes[i];
      // An AT prepare's locked rows ride in this same write (the decision with its answers).
      return outcome.kind === 'ok'
        ? { branchId: b.branchId, status: statusOf(b), calls: 1, result: outcome.result, ...lockedRowsOf(outcome) }
        : { branchId: b.branchId, status: statusOf(b), calls: 1, lastError: errorOf(outcome) };
    });
    const events: EventInput[] = loaded.branches.map((b, i) => callEvent(b, phase, outcomes[i], statusOf(b)));
    events.push({ type: 'status', from: loaded.tx.status, to: next.status, detail: { reason: next.reason, cause: 'phase1_finished' } });

    const saved = await this.writer.write(loaded, { status: next.status, reason: next.reason, ...this.writer.ownLease(), branches, events });
    if (!saved) return (await this.writer.load(loaded.tx.gid)) ?? loaded;
    crashPoint('after_decision', loaded.tx.gid);
    return saved;
  }

  /** Active tcc/2pc rows fall due only at their deadline: the engine rolls them back. */
  expiredWhenClaimed(): boolean {
    return true;
  }

  resumeActive(loaded: LoadedTx): Promise<LoadedTx> {
    return Promise.resolve(loaded);
  }

  phase2Wave(loaded: LoadedTx): BranchRecord[] {
    const waiting = new Set(branchesAwaitingPhase2(machineOf(loaded)).map((b) => b.branchId));
    return loaded.branches.filter((b) => waiting.has(b.branchId));
  }
}
