/**
 * The protocol's rules (PROTOCOL.md section 2) as one pure function: given a transaction and
 * an event, the next transaction and whether the move is allowed. No I/O lives here; the
 * services persist what this returns (with a compare-and-set) and perform its effects.
 *
 * What differs between modes is data each mode's plug-in declares (ModeRules), carried by the
 * transaction; nothing here asks which mode a transaction is.
 */
import { ErrorCode, type BranchStatus, type GlobalStatus, type RollbackReason } from '@nest-dtx/protocol';
import type { BranchKind } from './branch-kind.js';

export interface MachineBranch {
  readonly branchId: string;
  readonly status: BranchStatus;
  readonly kind: BranchKind;
  /**
   * The phase in progress answered ongoing (PROTOCOL.md 3.6: accepted, outcome not known yet) and
   * has had no final answer since: the branch is waiting, and is asked again. Absent: false. A
   * move of the global status ends every wait (a new phase begins for every branch).
   */
  readonly waiting?: boolean;
}

/** Every status a transaction may move to from each status. */
export type MoveTable = Readonly<Record<GlobalStatus, readonly GlobalStatus[]>>;

/**
 * The moves PROTOCOL.md 2 allows a mode whose commit point is the write of `committing`
 * (tcc, 2pc, msg): a decision first, then phase 2 to a terminal status.
 */
export const COMMITTING_MOVES: MoveTable = {
  active: ['committing', 'rolling_back'],
  committing: ['committed'],
  rolling_back: ['rolled_back'],
  committed: [],
  rolled_back: [],
};

/** A mode's rules, as the machine reads them: declared by the mode's plug-in, the same for every transaction of it. */
export interface ModeRules {
  /** Every move of the global status the mode makes (PROTOCOL.md 2). Nothing else ever happens. */
  readonly moves: MoveTable;
  /** Whether branches are added one by one after begin (interactive tcc/2pc); otherwise every branch is named at begin. */
  readonly addsBranches: boolean;
  /**
   * Whether its host records steps one by one after begin, each of its own kind (a workflow,
   * PROTOCOL.md 3.7). Steps and added branches are apart: a workflow takes no branch, a tcc
   * transaction no step.
   */
  readonly recordsSteps: boolean;
  /**
   * What a phase-1 success makes a branch of each kind the mode holds (prepared for tcc/2pc,
   * committed for a saga step). A commit asks this of every branch; a message's branches are
   * prepared from begin (its phase 1 is the caller's own local transaction).
   */
  readonly afterPhase1: Readonly<Partial<Record<BranchKind, BranchStatus>>>;
  /**
   * How phase-1 answers count. `held`: recorded as they come, decided on later by the client's
   * commit or a one-shot's end (phase1_answered, phase1_finished). `deciding`: each wave of
   * steps decides as soon as it can, a refused step rolling back at once and all steps done
   * committing (saga: steps_answered). null: the coordinator runs no phase 1 (msg).
   */
  readonly phase1Answers: 'held' | 'deciding' | null;
  /** Whether the client commits and rolls back (not a saga: its steps decide). An operator's rollback is always allowed. */
  readonly clientDecides: boolean;
  /**
   * What the deadline does to an active transaction: roll it back, or nothing until the
   * caller's check-back answers (msg: its local transaction may have committed).
   */
  readonly atDeadline: 'roll_back' | 'check';
}

export interface MachineTx {
  readonly rules: ModeRules;
  readonly status: GlobalStatus;
  readonly reason: RollbackReason | null;
  readonly branches: readonly MachineBranch[];
}

/**
 * What a participant's answer to a phase-1 call came to: a final answer (`ok`, `failed`), an
 * `ongoing` one (accepted, outcome not known yet: the branch waits), or none (`unknown`: no
 * answer in time, the outcome is not known and nothing was accepted).
 */
export type Phase1Answer = 'ok' | 'failed' | 'ongoing' | 'unknown';
/** What a participant's answer to a phase-2 call came to; `ongoing`: accepted, not done yet; `refused` is a 409, a participant bug. */
export type Phase2Answer = 'ok' | 'ongoing' | 'transient' | 'refused';
/** What msg's check-back came to: 2xx, 409, or anything else (ask again later). */
export type CheckAnswer = 'committed' | 'not_committed' | 'unknown';

export type MachineEvent =
  /** `kind` is null when the mode cannot say one (it takes no added branch, and refuses this one). */
  | { type: 'branch_added'; branchId: string; kind: BranchKind | null }
  /** A workflow's host records a step (its branchId is the stepId); the same stepId again changes nothing. */
  | { type: 'step_recorded'; branchId: string; kind: BranchKind }
  | { type: 'phase1_answered'; answers: ReadonlyArray<{ branchId: string; answer: Phase1Answer }> }
  /** One-shot: the round of phase-1 answers is in; decide, unless a branch still waits for its final answer. */
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

export function isAllowedMove(rules: ModeRules, from: GlobalStatus, to: GlobalStatus): boolean {
  return rules.moves[from].includes(to);
}

const unchanged = (tx: MachineTx): MachineResult => ({ ok: true, tx, changed: false });
const rejected = (error: ErrorCode): MachineResult => ({ ok: false, error });

/** A branch's change from an answer: a new status, and whether it now waits for a final answer. */
interface BranchUpdate {
  status?: BranchStatus;
  waiting?: boolean;
}

function moved(tx: MachineTx, next: Partial<MachineTx>, error?: ErrorCode): MachineResult {
  // Named, not `{ ...tx, ...next }`: every answer of every round comes here, and a second spread
  // into a literal is V8's slow path (no caller passes a field as undefined).
  let result: MachineTx = {
    rules: next.rules ?? tx.rules,
    status: next.status ?? tx.status,
    reason: next.reason === undefined ? tx.reason : next.reason,
    branches: next.branches ?? tx.branches,
  };
  if (result.status !== tx.status) {
    if (!isAllowedMove(tx.rules, tx.status, result.status)) {
      throw new Error(`state machine bug: ${tx.status} -> ${result.status} is not an allowed move`);
    }
    // A decision starts a new phase for every branch: what they were waiting on is over.
    result = { ...result, branches: result.branches.map((b) => (b.waiting ? { ...b, waiting: false } : b)) };
  }
  return error ? { ok: true, tx: result, changed: true, error } : { ok: true, tx: result, changed: true };
}

function updateBranches(tx: MachineTx, updates: ReadonlyMap<string, BranchUpdate>): MachineBranch[] {
  return tx.branches.map((b) => {
    const update = updates.get(b.branchId);
    if (!update) return b;
    const status = update.status ?? b.status;
    const waiting = update.waiting ?? b.waiting ?? false;
    return status === b.status && waiting === (b.waiting ?? false) ? b : { ...b, status, waiting };
  });
}

const allBranchesAre = (branches: readonly MachineBranch[], status: BranchStatus): boolean =>
  branches.every((b) => b.status === status);

/** Whether every branch has succeeded in phase 1, as its kind counts success: what a commit asks. */
const allBranchesReady = (tx: MachineTx, branches: readonly MachineBranch[] = tx.branches): boolean =>
  branches.every((b) => b.status === tx.rules.afterPhase1[b.kind]);

/**
 * What phase-1 answers do to the branches still pending: a success makes them what the branch's
 * kind makes of one, a refusal failed (both final: no longer waiting); an ongoing answer leaves
 * them pending and waiting; no answer (unknown) leaves them as they were, waiting or not (a
 * branch that accepted its call is still working on it).
 */
function phase1Updates(tx: MachineTx, answers: ReadonlyArray<{ branchId: string; answer: Phase1Answer }>): Map<string, BranchUpdate> {
  const updates = new Map<string, BranchUpdate>();
  for (const { branchId, answer } of answers) {
    const branch = tx.branches.find((b) => b.branchId === branchId);
    if (!branch || branch.status !== 'pending' || answer === 'unknown') continue;
    const succeeded = tx.rules.afterPhase1[branch.kind];
    if (answer === 'ongoing') updates.set(branchId, { waiting: true });
    else if (answer === 'failed') updates.set(branchId, { status: 'failed', waiting: false });
    else if (succeeded) updates.set(branchId, { status: succeeded, waiting: false });
  }
  return updates;
}

const changesAnything = (tx: MachineTx, branches: readonly MachineBranch[]): boolean => branches.some((b, i) => b !== tx.branches[i]);

function rollBack(tx: MachineTx, reason: RollbackReason, error?: ErrorCode): MachineResult {
  return moved(tx, { status: 'rolling_back', reason }, error);
}

export function transition(tx: MachineTx, event: MachineEvent): MachineResult {
  const { rules } = tx;
  switch (event.type) {
    case 'branch_added': {
      // A saga's steps and a message's branches are all given at begin.
      if (!rules.addsBranches) return rejected(ErrorCode.WRONG_MODE);
      if (tx.status !== 'active') return rejected(ErrorCode.TX_NOT_ACTIVE);
      if (tx.branches.some((b) => b.branchId === event.branchId)) return unchanged(tx);
      if (!event.kind) throw new Error('state machine bug: a mode that adds branches said no kind for one');
      return moved(tx, { branches: [...tx.branches, { branchId: event.branchId, status: 'pending', kind: event.kind }] });
    }

    case 'step_recorded': {
      if (!rules.recordsSteps) return rejected(ErrorCode.WRONG_MODE);
      // A step recorded before is answered from the record whatever the workflow's status: a
      // replay after its decision gets the same answers as the run that decided it.
      if (tx.branches.some((b) => b.branchId === event.branchId)) return unchanged(tx);
      if (tx.status !== 'active') return rejected(ErrorCode.TX_NOT_ACTIVE);
      // A local step ran in its host: it is recorded as it ended, with no phase 1 to call.
      const status = event.kind === 'local' ? rules.afterPhase1.local : 'pending';
      if (!status) throw new Error('state machine bug: a mode that records local steps says nothing of them');
      return moved(tx, { branches: [...tx.branches, { branchId: event.branchId, status, kind: event.kind }] });
    }

    case 'phase1_answered': {
      if (rules.phase1Answers !== 'held') return rejected(ErrorCode.WRONG_MODE);
      // Answers only move branches still pending; once a rollback is decided the rollback phase
      // reaches every branch whatever it answered, so late answers change nothing.
      if (tx.status !== 'active') return unchanged(tx);
      const branches = updateBranches(tx, phase1Updates(tx, event.answers));
      if (!changesAnything(tx, branches)) return unchanged(tx);
      return moved(tx, { branches });
    }

    case 'phase1_finished': {
      if (tx.status !== 'active') return unchanged(tx);
      if (rules.phase1Answers !== 'held') return rejected(ErrorCode.WRONG_MODE);
      if (allBranchesReady(tx)) return moved(tx, { status: 'committing' });
      // A refusal, or a branch still pending that gave no answer in time (its outcome unknown,
      // nothing accepted): the only safe decision is rollback (the rollback phase reaches it too).
      if (tx.branches.some((b) => b.status === 'failed' || (b.status === 'pending' && !b.waiting))) return rollBack(tx, 'branch_failed');
      // The others are prepared and some still work on it (they answered ongoing): no decision yet.
      return unchanged(tx);
    }

    case 'commit_requested': {
      if (!rules.clientDecides) return rejected(ErrorCode.WRONG_MODE);
      switch (tx.status) {
        case 'active':
          if (allBranchesReady(tx)) return moved(tx, { status: 'committing' });
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
      if (!rules.clientDecides && event.reason === 'client') return rejected(ErrorCode.WRONG_MODE);
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
      if (rules.atDeadline === 'check') return unchanged(tx);
      return tx.status === 'active' ? rollBack(tx, 'timeout') : unchanged(tx);

    case 'check_answered':
      if (rules.atDeadline !== 'check') return rejected(ErrorCode.WRONG_MODE);
      if (tx.status !== 'active' || event.answer === 'unknown') return unchanged(tx);
      // The commit point of a message whose caller never submitted: its local transaction committed.
      if (event.answer === 'committed') return moved(tx, { status: 'committing' });
      return rollBack(tx, 'timeout');

    case 'phase2_answered': {
      if (tx.status !== 'committing' && tx.status !== 'rolling_back') return unchanged(tx);
      const done: BranchStatus = tx.status === 'committing' ? 'committed' : 'rolled_back';
      const updates = new Map<string, BranchUpdate>();
      for (const { branchId, answer } of event.answers) {
        const branch = tx.branches.find((b) => b.branchId === branchId);
        if (!branch || branch.status === done) continue;
        // Delivered; or accepted and not done yet (ongoing): owed still, and waiting.
        if (answer === 'ok') updates.set(branchId, { status: done, waiting: false });
        else if (answer === 'ongoing') updates.set(branchId, { waiting: true });
      }
      const branches = updateBranches(tx, updates);
      if (allBranchesAre(branches, done)) return moved(tx, { branches, status: done });
      if (!changesAnything(tx, branches)) return unchanged(tx);
      return moved(tx, { branches });
    }

    case 'steps_answered': {
      if (rules.phase1Answers !== 'deciding') return rejected(ErrorCode.WRONG_MODE);
      if (tx.status !== 'active') return unchanged(tx);
      const branches = updateBranches(tx, phase1Updates(tx, event.answers));
      // A forward step refused: compensate everything that may have run (a step still waiting too).
      if (branches.some((b) => b.status === 'failed')) return moved(tx, { branches, status: 'rolling_back', reason: 'branch_failed' });
      // The commit point of a saga: every forward step has committed.
      if (allBranchesReady(tx, branches)) return moved(tx, { branches, status: 'committed' });
      if (!changesAnything(tx, branches)) return unchanged(tx);
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
