import type { BranchLocks, BranchStatus, CallOutcome, Json, StepKind } from '@nest-dtx/protocol';
import type { BranchRecord, TxRecord } from '../store/records.js';
import type { BranchKind } from './branch-kind.js';
import type { MachineTx, ModeRules, Phase1Answer, Phase2Answer } from './state-machine.js';

/** Helpers of the state machine: what the store holds, as the machine sees it, and back. */

/** A branch as far as its kind goes: its id, and a workflow step's recorded kind (absent or null on every other mode's). */
export interface KindedBranch {
  readonly branchId: string;
  readonly kind?: StepKind | null;
}

/** What the machine needs of a mode: its rules, and the kind of each branch. */
export interface MachineMode {
  readonly rules: ModeRules;
  kindOf(branch: KindedBranch): BranchKind;
}

/**
 * A transaction as the machine sees it (a loaded one, or one as adding a branch reads it:
 * statuses and kinds only, where no branch's wait matters). A branch waits while its `waitingSince` is set.
 */
export const machineOf = (
  loaded: { tx: Pick<TxRecord, 'status' | 'reason'>; branches: readonly (Pick<BranchRecord, 'branchId' | 'status'> & KindedBranch & Partial<Pick<BranchRecord, 'waitingSince'>>)[] },
  mode: MachineMode,
): MachineTx => ({
  rules: mode.rules,
  status: loaded.tx.status,
  reason: loaded.tx.reason,
  branches: loaded.branches.map((b) => ({ branchId: b.branchId, status: b.status, kind: mode.kindOf(b), waiting: (b.waitingSince ?? null) !== null })),
});

/** What a participant's answer to a phase-1 call (saga: a forward step) means to the machine. */
export const phase1AnswerOf = (outcome: CallOutcome): Phase1Answer =>
  outcome.kind === 'ok' ? 'ok' : outcome.kind === 'failed' ? 'failed' : outcome.kind === 'ongoing' ? 'ongoing' : 'unknown';

/** What a participant's answer to a phase-2 call means to the machine; a 409 there is a refusal (a participant bug). */
export const phase2AnswerOf = (outcome: CallOutcome): Phase2Answer =>
  outcome.kind === 'ok' ? 'ok' : outcome.kind === 'failed' ? 'refused' : outcome.kind === 'ongoing' ? 'ongoing' : 'transient';

const nobodyWaits = (): boolean => false;

/** Whether a branch of `next` waits for a final answer to its phase in progress (PROTOCOL.md 3.6). */
export function waitingIn(next: MachineTx): (branchId: string) => boolean {
  // Most transactions never wait (every answer final): no set to build for them, on every round.
  if (!next.branches.some((b) => b.waiting)) return nobodyWaits;
  const waiting = new Set(next.branches.filter((b) => b.waiting).map((b) => b.branchId));
  return (branchId) => waiting.has(branchId);
}

export const errorOf = (outcome: CallOutcome): Json => (outcome.kind === 'ok' || outcome.kind === 'ongoing' ? null : outcome.error);

/**
 * The rows an AT prepare's answer says it locked, to record with the answer (spread into it);
 * nothing for any other answer, or one that locked no row (a branch that holds none is no
 * holder of locks for the admin view).
 */
export const lockedRowsOf = (outcome: CallOutcome): { locks?: BranchLocks } =>
  outcome.kind === 'ok' && outcome.locks && outcome.locks.count > 0 ? { locks: outcome.locks } : {};

/** The one branch-status lookup: a branch's status by its id, undefined for an id not there. */
export function branchStatuses(branches: readonly { branchId: string; status: BranchStatus }[]): (branchId: string) => BranchStatus | undefined {
  const byId = new Map(branches.map((b) => [b.branchId, b.status]));
  return (branchId) => byId.get(branchId);
}

/** The status of each branch in `next`, falling back to the branch's own where `next` does not name it. */
export function branchStatusIn(next: MachineTx): (branch: BranchRecord) => BranchStatus {
  const statusOf = branchStatuses(next.branches);
  return (branch) => statusOf(branch.branchId) ?? branch.status;
}
