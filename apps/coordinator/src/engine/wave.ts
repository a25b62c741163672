import type { CallOutcome, GlobalStatus, Phase } from '@nest-dtx/protocol';
import type { BranchRecord, LoadedTx } from '../store/records.js';
import type { CallTarget } from './branch-caller.js';
import { phaseOfKind } from './branch-kind.js';
import { machineOf, phase2AnswerOf, type MachineMode } from './machine.js';
import { branchesAwaitingPhase2, type MachineEvent } from './state-machine.js';

/**
 * One round of calls a mode asks for, as the engine's round (transaction-round.ts) runs it:
 * who is called in which phase, and which machine events their answers form. A mode chooses
 * waves; it never calls, transitions or writes itself.
 */
export interface Wave {
  readonly calls: readonly WaveCall[];
  /** The machine events the answers (in the order of `calls`) form, applied in order. */
  answered(outcomes: readonly CallOutcome[]): MachineEvent[];
}

export interface WaveCall {
  readonly target: CallTarget;
  /** The branch called, for its status, attempts and change; null for msg's check-back, which is no branch. */
  readonly branch: BranchRecord | null;
  /** Null when the branch's kind has no phase now (a message's branch on rollback): nobody is called, and it is done as it stands. */
  readonly phase: Phase | null;
}

/** Nothing to call for `postponedMs` (a message before its check-back time): due again then, the lease let go. */
export interface Postponed {
  readonly postponedMs: number;
}

/** What a mode does next with an active transaction this instance drives; null: nothing now. */
export type ActiveStep = Wave | Postponed | null;

export const isPostponed = (step: Wave | Postponed): step is Postponed => 'postponedMs' in step;

/** Each branch in the phase its kind has while the transaction is `status`. */
export function branchCalls(branches: readonly BranchRecord[], mode: MachineMode, status: GlobalStatus): WaveCall[] {
  return branches.map((branch) => ({ target: branch, branch, phase: phaseOfKind(mode.kindOf(branch), status) }));
}

/** Each called branch's id with what its answer means to the machine. */
export function answersOf<A>(calls: readonly WaveCall[], outcomes: readonly CallOutcome[], meaning: (outcome: CallOutcome) => A): { branchId: string; answer: A }[] {
  return calls.map((call, i) => ({ branchId: call.target.branchId, answer: meaning(outcomes[i]) }));
}

/** Whether a branch still waits for the final answer to its phase 1 (it answered ongoing, PROTOCOL.md 3.6). */
export const isWaiting = (branch: BranchRecord): boolean => branch.status === 'pending' && branch.waitingSince !== null;

/** Phase 2 (confirm / commit / cancel / rollback / compensate, by each branch's kind) to `branches`. */
export function phase2Wave(loaded: LoadedTx, mode: MachineMode, branches: readonly BranchRecord[]): Wave {
  const calls = branchCalls(branches, mode, loaded.tx.status);
  return {
    calls,
    answered: (outcomes) => [{ type: 'phase2_answered', answers: answersOf(calls, outcomes, phase2AnswerOf) }],
  };
}

/** Every branch still owed phase 2, all at once. */
export function awaitingPhase2(loaded: LoadedTx, mode: MachineMode): BranchRecord[] {
  const waiting = new Set(branchesAwaitingPhase2(machineOf(loaded, mode)).map((b) => b.branchId));
  return loaded.branches.filter((b) => waiting.has(b.branchId));
}
