import type { CallOutcome, GlobalStatus, Mode, Phase } from '@nest-dtx/protocol';
import type { BranchRecord, LoadedTx } from '../store/records.js';
import type { CallTarget } from './branch-caller.js';
import { callModeOf, phaseOfKind, type BranchKind } from './branch-kind.js';
import { machineOf, phase1AnswerOf, phase2AnswerOf, type MachineMode } from './machine.js';
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
  /**
   * When the answers settle the wave without moving the transaction, it has nothing more to do
   * for this long (a workflow's host asked to resume it: until its next resume), rather than
   * the next wave at once. Unset: the next wave at once.
   */
  idleAfter?(outcomes: readonly CallOutcome[]): number;
}

export interface WaveCall {
  readonly target: CallTarget;
  /** The branch called, for its status, attempts and change; null for msg's check-back, which is no branch. */
  readonly branch: BranchRecord | null;
  /** Null when the branch's kind has no phase now (a message's branch on rollback): nobody is called, and it is done as it stands. */
  readonly phase: Phase | null;
  /** The mode the call's body names (PROTOCOL.md 5.1), when it is not the transaction's: a workflow's step is called in its kind's. */
  readonly mode?: Mode;
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
  return branches.map((branch) => branchCall(branch, mode.kindOf(branch), status));
}

/**
 * A branch's call in the phase its kind has while the transaction is `status`, in its kind's
 * mode. A workflow's local step ran in its host, which is never called for it: its only call
 * is its compensation on rollback, to the participant that compensation names, and one without
 * a compensation is done as it stands.
 */
export function branchCall(branch: BranchRecord, kind: BranchKind, status: GlobalStatus): WaveCall {
  const phase = phaseOfKind(kind, status);
  if (kind !== 'local') return { target: branch, branch, phase, mode: callModeOf(kind) };
  const { compensate } = branch;
  if (!phase || !compensate) return { target: branch, branch, phase: null };
  return { target: { branchId: branch.branchId, ...compensate }, branch, phase, mode: callModeOf(kind) };
}

/** Each called branch's id with what its answer means to the machine. */
export function answersOf<A>(calls: readonly WaveCall[], outcomes: readonly CallOutcome[], meaning: (outcome: CallOutcome) => A): { branchId: string; answer: A }[] {
  return calls.map((call, i) => ({ branchId: call.target.branchId, answer: meaning(outcomes[i]) }));
}

/**
 * Phase 1 (try / prepare / execute, by each branch's kind) to `branches`. Its answers count as
 * the mode's rules say: held for a decision (phase1_answered), or deciding as they come (a
 * saga's steps_answered). `decide`: a one-shot decides at once with them (phase1_finished).
 */
export function phase1Wave(branches: readonly BranchRecord[], mode: MachineMode, decide = false): Wave {
  const calls = branchCalls(branches, mode, 'active');
  const type = mode.rules.phase1Answers === 'deciding' ? 'steps_answered' : 'phase1_answered';
  return {
    calls,
    answered: (outcomes) => {
      const answered: MachineEvent = { type, answers: answersOf(calls, outcomes, phase1AnswerOf) };
      return decide ? [answered, { type: 'phase1_finished' }] : [answered];
    },
  };
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
