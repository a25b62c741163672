import { MODE_PHASES, type BranchMode, type GlobalStatus, type ModePhases, type Phase, type StepKind } from '@nest-dtx/protocol';

/**
 * What a branch is, which decides the phase it gets in each global status and what a phase-1
 * success makes of it. Today every branch is of its transaction's mode; a workflow's steps
 * (PROTOCOL.md 3.7) each have their own, so one transaction may hold tcc and saga branches.
 */
export type BranchKind = BranchMode | StepKind;

/** A local step ran in its host: nobody is called for its phase 1, and only its compensation is owed on rollback. */
const LOCAL_STEP_PHASES: Readonly<Record<keyof ModePhases, Phase | null>> = { phase1: null, commit: null, rollback: 'compensate' };

/**
 * The phase a branch of this kind gets while its transaction is in `status`; null when it is
 * owed no call then (a saga step on commit, a message's branch on rollback, anything terminal).
 * msg's phase 1 is the check-back of its transaction, asked of the caller, never of a branch.
 */
export function phaseOfKind(kind: BranchKind, status: GlobalStatus): Phase | null {
  const phases = kind === 'local' ? LOCAL_STEP_PHASES : MODE_PHASES[kind];
  switch (status) {
    case 'active':
      return phases.phase1;
    case 'committing':
      return phases.commit;
    case 'rolling_back':
      return phases.rollback;
    case 'committed':
    case 'rolled_back':
      return null;
  }
}

/**
 * The mode a call to a branch of this kind names in its body (PROTOCOL.md 5.1), so that a
 * participant serves a workflow's step as any branch of that mode: its own; a local step's only
 * call, its compensation, is a saga action's `compensate`.
 */
export function callModeOf(kind: BranchKind): BranchMode {
  return kind === 'local' ? 'saga' : kind;
}
