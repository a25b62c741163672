/**
 * The protocol's rules (PROTOCOL.md section 2) as one pure function: given a transaction and
 * an event, the next transaction and whether the move is allowed. No I/O lives here; the
 * services persist what this returns (with a compare-and-set) and perform its effects.
 */
import {
  ErrorCode,
  type BranchStatus,
  type GlobalStatus,
  type Mode,
  type RollbackReason,
} from '@nest-dtx/protocol';

export interface MachineBranch {
  readonly branchId: string;
  readonly status: BranchStatus;
}

export interface MachineTx {
  readonly mode: Mode;
  readonly status: GlobalStatus;
  readonly reason: RollbackReason | null;
  readonly branches: readonly MachineBranch[];
}

/** What a participant's answer to a phase-1 call came to. */
export type Phase1Answer = 'ok' | 'failed' | 'unknown';
/** What a participant's answer to a phase-2 call came to; `refused` is a 409, a participant bug. */
export type Phase2Answer = 'ok' | 'transient' | 'refused';
/** What msg's check-back came to: 2xx, 409, or anything else (ask again later). */
export type CheckAnswer = 'committed' | 'not_committed' | 'unknown';

export type MachineEvent =
  | { type: 'branch_added'; branchId: string }
  | { type: 'phase1_answered'; answers: ReadonlyArray<{ branchId: string; answer: Phase1Answer }> }
  /** One-shot: every phase-1 answer is in; decide. */
  | { type: 'phase1_finished' }
  | { type: 'commit_requested' }
  | { type: 'rollback_requested'; reason: Extract<RollbackReason, 'client' | 'admin'> }
  | { type: 'deadline_passed' }
  | { type: 'phase2_answered'; answers: ReadonlyArray<{ branchId: string; answer: Phase2Answer }> }
  /** Saga: answers of forward steps. The saga commits when every step has committed. */
  | { type: 'steps_answered'; answers: ReadonlyArray<{ branchId: string; answer: Phase1Answer }> }
  /** msg: the caller's service answered the check-back of a message past its deadline. */
  | { type: 'check_answered'; answer: CheckAnswer };

export type MachineResult =
  | {
      ok: true;
      tx: MachineTx;
      /** False when the event changes nothing (an idempotent repeat). */
      changed: boolean;
      /** An error the caller answers with even though the move happened (CANNOT_COMMIT). */
      error?: ErrorCode;
    }
  | { ok: false; error: ErrorCode };

/** Every move of the global status PROTOCOL.md section 2 allows, per mode. Nothing else ever happens. */
const TWO_PHASE_MOVES: Readonly<Record<GlobalStatus, readonly GlobalStatus[]>> = {
  active: ['committing', 'rolling_back'],
  committing: ['committed'],
  rolling_back: ['rolled_back'],
  committed: [],
  rolled_back: [],
};
/** A saga's forward steps are already committed: it never passes through `committing`. */
const SAGA_MOVES: Readonly<Record<GlobalStatus, readonly GlobalStatus[]>> = {
  active: ['committed', 'rolling_back'],
  committing: [],
  rolling_back: ['rolled_back'],
  committed: [],
  rolled_back: [],
};

export function isAllowedMove(mode: Mode, from: GlobalStatus, to: GlobalStatus): boolean {
  return (mode === 'saga' ? SAGA_MOVES : TWO_PHASE_MOVES)[from].includes(to);
}

const unchanged = (tx: MachineTx): MachineResult => ({ ok: true, tx, changed: false });
const rejected = (error: ErrorCode): MachineResult => ({ ok: false, error });

function moved(tx: MachineTx, next: Partial<MachineTx>, error?: ErrorCode): MachineResult {
  const result: MachineTx = { ...tx, ...next };
  if (result.status !== tx.status && !isAllowedMove(tx.mode, tx.status, result.status)) {
    throw new Error(`state machine bug: ${tx.status} -> ${result.status} is not an allowed move`);
  }
  return error ? { ok: true, tx: result, changed: true, error } : { ok: true, tx: result, changed: true };
}

function setBranchStatuses(tx: MachineTx, updates: ReadonlyMap<string, BranchStatus>): MachineBranch[] {
  return tx.branches.map((b) => {
    const status = updates.get(b.branchId);
    return status && status !== b.status ? { ...b, status } : b;
  });
}

const allBranchesAre = (branches: readonly MachineBranch[], status: BranchStatus): boolean =>
  branches.every((b) => b.status === status);

function rollBack(tx: MachineTx, reason: RollbackReason, error?: ErrorCode): MachineResult {
  return moved(tx, { status: 'rolling_back', reason }, error);
}

export function transition(tx: MachineTx, event: MachineEvent): MachineResult {
  switch (event.type) {
    case 'branch_added': {
      // A saga's steps and a message's branches are all given at begin.
      if (tx.mode === 'saga' || tx.mode === 'msg') return rejected(ErrorCode.WRONG_MODE);
      if (tx.status !== 'active') return rejected(ErrorCode.TX_NOT_ACTIVE);
      if (tx.branches.some((b) => b.branchId === event.branchId)) return unchanged(tx);
      return moved(tx, { branches: [...tx.branches, { branchId: event.branchId, status: 'pending' }] });
    }

    case 'phase1_answered': {
      if (tx.mode === 'saga' || tx.mode === 'msg') return rejected(ErrorCode.WRONG_MODE);
      // Answers only move branches still pending; once a rollback is decided the rollback phase
      // reaches every branch whatever it answered, so late answers change nothing.
      if (tx.status !== 'active') return unchanged(tx);
      const updates = new Map<string, BranchStatus>();
      for (const { branchId, answer } of event.answers) {
        const branch = tx.branches.find((b) => b.branchId === branchId);
        if (!branch || branch.status !== 'pending' || answer === 'unknown') continue;
        updates.set(branchId, answer === 'ok' ? 'prepared' : 'failed');
      }
      if (updates.size === 0) return unchanged(tx);
      return moved(tx, { branches: setBranchStatuses(tx, updates) });
    }

    case 'phase1_finished': {
      if (tx.status !== 'active') return unchanged(tx);
      if (tx.mode === 'saga' || tx.mode === 'msg') return rejected(ErrorCode.WRONG_MODE);
      // A branch still pending gave no answer in time: its outcome is unknown, so the only safe
      // decision is rollback (the rollback phase also reaches it).
      if (allBranchesAre(tx.branches, 'prepared')) return moved(tx, { status: 'committing' });
      return rollBack(tx, 'branch_failed');
    }

    case 'commit_requested': {
      if (tx.mode === 'saga') return rejected(ErrorCode.WRONG_MODE);
      switch (tx.status) {
        case 'active':
          if (allBranchesAre(tx.branches, 'prepared')) return moved(tx, { status: 'committing' });
          return rollBack(tx, 'branch_failed', ErrorCode.CANNOT_COMMIT);
        case 'committing':
        case 'committed':
          return unchanged(tx);
        case 'rolling_back':
        case 'rolled_back':
          return rejected(ErrorCode.TX_ALREADY_DECIDED);
      }
      break;
    }

    case 'rollback_requested': {
      if (tx.mode === 'saga' && event.reason === 'client') return rejected(ErrorCode.WRONG_MODE);
      switch (tx.status) {
        case 'active':
          return rollBack(tx, event.reason);
        case 'rolling_back':
        case 'rolled_back':
          return unchanged(tx);
        case 'committing':
        case 'committed':
          return rejected(ErrorCode.TX_ALREADY_DECIDED);
      }
      break;
    }

    case 'deadline_passed':
      // A message is never rolled back blindly: its local transaction may have committed. The
      // coordinator asks (check_answered) instead.
      if (tx.mode === 'msg') return unchanged(tx);
      return tx.status === 'active' ? rollBack(tx, 'timeout') : unchanged(tx);

    case 'check_answered':
      if (tx.mode !== 'msg') return rejected(ErrorCode.WRONG_MODE);
      if (tx.status !== 'active' || event.answer === 'unknown') return unchanged(tx);
      // The commit point of a message whose caller never submitted: its local transaction committed.
      if (event.answer === 'committed') return moved(tx, { status: 'committing' });
      return rollBack(tx, 'timeout');

    case 'phase2_answered': {
      if (tx.status !== 'committing' && tx.status !== 'rolling_back') return unchanged(tx);
      const done: BranchStatus = tx.status === 'committing' ? 'committed' : 'rolled_back';
      const updates = new Map<string, BranchStatus>();
      for (const { branchId, answer } of event.answers) {
        if (answer === 'ok' && tx.branches.some((b) => b.branchId === branchId)) updates.set(branchId, done);
      }
      const branches = setBranchStatuses(tx, updates);
      if (allBranchesAre(branches, done)) return moved(tx, { branches, status: done });
      if (updates.size === 0) return unchanged(tx);
      return moved(tx, { branches });
    }

    case 'steps_answered': {
      if (tx.mode !== 'saga') return rejected(ErrorCode.WRONG_MODE);
      if (tx.status !== 'active') return unchanged(tx);
      const updates = new Map<string, BranchStatus>();
      for (const { branchId, answer } of event.answers) {
        const branch = tx.branches.find((b) => b.branchId === branchId);
        if (!branch || branch.status !== 'pending' || answer === 'unknown') continue;
        updates.set(branchId, answer === 'ok' ? 'committed' : 'failed');
      }
      const branches = setBranchStatuses(tx, updates);
      // A forward step refused: compensate everything that may have run.
      if (branches.some((b) => b.status === 'failed')) return moved(tx, { branches, status: 'rolling_back', reason: 'branch_failed' });
      // The commit point of a saga: every forward step has committed.
      if (allBranchesAre(branches, 'committed')) return moved(tx, { branches, status: 'committed' });
      if (updates.size === 0) return unchanged(tx);
      return moved(tx, { branches });
    }
  }
  // Unreachable: every event type and status returns above; TypeScript checks the event union.
  return rejected(ErrorCode.INTERNAL);
}

/** Branches that still need the phase-2 call of a decided transaction. */
export function branchesAwaitingPhase2(tx: MachineTx): MachineBranch[] {
  if (tx.status === 'committing') return tx.branches.filter((b) => b.status !== 'committed');
  if (tx.status === 'rolling_back') return tx.branches.filter((b) => b.status !== 'rolled_back');
  return [];
}
