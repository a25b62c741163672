/**
 * The vocabulary of PROTOCOL.md sections 1 and 2, as values and types.
 * Every other module imports these instead of spelling the strings again.
 */
export const MODES = ['tcc', '2pc', 'saga', 'msg', 'workflow'] as const;
export type Mode = (typeof MODES)[number];
/** The modes whose branches are all of their own kind; a workflow's steps each have a kind (PROTOCOL.md 3.7). */
export type BranchMode = Exclude<Mode, 'workflow'>;

/** What a workflow's step is (PROTOCOL.md 3.7): a branch of one of these modes, or code the host ran itself. */
export const STEP_KINDS = ['tcc', '2pc', 'saga', 'local'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

export const GLOBAL_STATUSES = ['active', 'committing', 'committed', 'rolling_back', 'rolled_back'] as const;
export type GlobalStatus = (typeof GLOBAL_STATUSES)[number];

export const TERMINAL_STATUSES: readonly GlobalStatus[] = ['committed', 'rolled_back'];
export const isTerminal = (status: GlobalStatus): boolean => TERMINAL_STATUSES.includes(status);

export const BRANCH_STATUSES = ['pending', 'prepared', 'failed', 'committed', 'rolled_back'] as const;
export type BranchStatus = (typeof BRANCH_STATUSES)[number];

export const ROLLBACK_REASONS = ['client', 'timeout', 'branch_failed', 'admin'] as const;
export type RollbackReason = (typeof ROLLBACK_REASONS)[number];

export const PHASES = ['try', 'confirm', 'cancel', 'prepare', 'commit', 'rollback', 'execute', 'compensate', 'check', 'resume'] as const;
export type Phase = (typeof PHASES)[number];

/**
 * The role a phase plays, whatever the mode calls it. `check` is msg's question to the caller's
 * service: did the local transaction of this message commit? `resume` asks a workflow's host to
 * run the workflow again (PROTOCOL.md 3.7).
 */
export type PhaseKind = 'phase1' | 'commit' | 'rollback' | 'check' | 'resume';

export interface ModePhases {
  /** msg: its phase 1 is the caller's own local transaction; the coordinator only asks about it (`check`). */
  phase1: Phase;
  /** Saga has no commit phase: its forward steps are already committed. msg delivers with `execute`. */
  commit: Phase | null;
  /** msg has no rollback phase: nothing was sent to any branch before the commit. */
  rollback: Phase | null;
}

/** The phases of each mode's branches (a workflow's steps take the phases of their kind). */
export const MODE_PHASES: Readonly<Record<BranchMode, ModePhases>> = {
  tcc: { phase1: 'try', commit: 'confirm', rollback: 'cancel' },
  '2pc': { phase1: 'prepare', commit: 'commit', rollback: 'rollback' },
  saga: { phase1: 'execute', commit: null, rollback: 'compensate' },
  msg: { phase1: 'check', commit: 'execute', rollback: null },
};

/**
 * The branchId of msg's check-back call (PROTOCOL.md 3.1): the SDK keys the barrier row of the
 * caller's local transaction by it, so no branch of a msg transaction may use it.
 */
export const MSG_CHECK_BRANCH_ID = 'check';

export function phaseKind(phase: Phase): PhaseKind {
  switch (phase) {
    case 'try':
    case 'prepare':
    case 'execute':
      return 'phase1';
    case 'confirm':
    case 'commit':
      return 'commit';
    case 'cancel':
    case 'rollback':
    case 'compensate':
      return 'rollback';
    case 'check':
      return 'check';
    case 'resume':
      return 'resume';
  }
}

/** gid and branchId charset and length (PROTOCOL.md 3.1, 3.2). */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Participant and action names: the same charset, shorter. */
export const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
