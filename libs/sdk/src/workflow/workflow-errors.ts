import type { GlobalStatus, Json, RollbackReason, StepKind } from '@nest-dtx/protocol';

/** What a step call names: its id, kind and (for a branch) the participant's action. */
export interface StepIdentity {
  stepId: string;
  kind: StepKind;
  /** Null for a local step, which calls no participant. */
  participant: string | null;
  action: string | null;
}

/** `tcc inventory/reserve`, `local`: how messages name a step. */
export function describeStep(step: Omit<StepIdentity, 'stepId'>): string {
  return step.kind === 'local' ? 'local' : `${step.kind} ${step.participant}/${step.action}`;
}

/**
 * A branch step's participant refused its phase 1 (PROTOCOL.md 3.7, answered as 3.2's
 * `409 BRANCH_FAILED`). The coordinator recorded it: a replay throws the same error at the same
 * step, so the workflow may catch it and go on (a failed step does not end the workflow by
 * itself). Note that the coordinator refuses a commit while a tcc / 2pc step is failed, or a saga
 * step did not execute (3.3, 3.7): such a commit rolls the workflow back instead.
 */
export class WorkflowStepFailedError extends Error {
  constructor(
    readonly gid: string,
    readonly step: StepIdentity,
    /** The participant's answer as the coordinator kept it (the branch's `lastError`): for an SDK participant, its 409 body. */
    readonly details: Json,
  ) {
    super(`workflow ${gid}: step ${step.stepId} (${describeStep(step)}) was refused by its participant`);
    this.name = 'WorkflowStepFailedError';
  }
}

/**
 * The coordinator got no answer in time from a branch step's participant (3.2's `502`/`504
 * BRANCH_UNKNOWN`): its outcome is unknown, and the step stays `pending`, so a commit would roll
 * back. Left uncaught it rolls the workflow back, which is what the protocol advises.
 */
export class WorkflowStepUnknownError extends Error {
  constructor(
    readonly gid: string,
    readonly step: StepIdentity,
    /** The coordinator's description of the last failed call (the branch's `lastError`). */
    readonly lastError: Json,
  ) {
    super(`workflow ${gid}: step ${step.stepId} (${describeStep(step)}) got no answer in time: its outcome is unknown`);
    this.name = 'WorkflowStepUnknownError';
  }
}

/**
 * The run stopped without deciding the workflow: not a business outcome, so the runner neither
 * commits nor rolls back whatever the function does with it (catching it changes nothing: every
 * later step call throws it again, and the function's return is ignored). The workflow stays
 * with the coordinator, which resumes it later (PROTOCOL.md 3.7) or rolls it back at its
 * deadline. Subclasses say why; this class itself is used when the coordinator could not be
 * reached or refused a request it should have accepted (`cause` holds its error).
 */
export class WorkflowInterruptedError extends Error {
  constructor(
    readonly gid: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WorkflowInterruptedError';
  }
}

/**
 * The function did not replay the way it ran before: a step id it asked for was recorded with
 * another kind, participant or action (found in the record before anything was sent, or
 * answered `409 STEP_MISMATCH` by the coordinator), or a step recorded by an earlier run was
 * not asked for at all. The function is not deterministic (see the Workflow decorator). No run
 * can get past it, so it is logged as an error and the workflow is left to the coordinator,
 * which rolls it back at its deadline.
 */
export class StepMismatchError extends WorkflowInterruptedError {
  constructor(
    gid: string,
    message: string,
    readonly asked: StepIdentity | null,
    /** What the record holds under that id, when the record was read (null for a coordinator's 409). */
    readonly recorded: StepIdentity | null,
  ) {
    super(gid, message);
    this.name = 'StepMismatchError';
  }
}

/**
 * The workflow was decided while this run went on: rolled back at its deadline or by an
 * operator (a step answered `409 TX_NOT_ACTIVE`, or its status was no longer `active`).
 */
export class WorkflowNotActiveError extends WorkflowInterruptedError {
  constructor(
    gid: string,
    readonly status: GlobalStatus | null,
  ) {
    super(gid, `workflow ${gid} is no longer active${status ? ` (${status})` : ''}: it was decided while this run went on`);
    this.name = 'WorkflowNotActiveError';
  }
}

/**
 * The workflow was rolled back: its function threw (`cause` is what it threw), the coordinator
 * refused its commit (`409 CANNOT_COMMIT`: a step was failed or pending), or it was rolled back
 * elsewhere (deadline, operator). What WorkflowClient.run rejects with.
 */
export class WorkflowRolledBackError extends Error {
  constructor(
    readonly gid: string,
    readonly reason: RollbackReason | null,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WorkflowRolledBackError';
  }
}

/** A mistake in the workflow's code that no run can get past: an invalid or repeated step id, a result JSON cannot hold. */
export class WorkflowDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkflowDefinitionError';
  }
}
