import type { BranchStatus, GlobalStatus, Json, JsonObject, Mode, RollbackReason, StepKind } from '@nest-dtx/protocol';

/** A step kind that is a branch on a participant (the others are local). */
export type BranchStepKind = Exclude<StepKind, 'local'>;

/** A step as 3.4 shows a workflow's `branches` (PROTOCOL.md 3.7): in recorded order, each with its kind. */
export interface WorkflowStepView {
  /** The step's id (a step's branchId is its stepId). */
  branchId: string;
  kind: StepKind;
  /** Null when the coordinator shows none (a local step calls no participant). */
  participant: string | null;
  action: string | null;
  status: BranchStatus;
  result: Json;
  lastError: Json;
}

/** A workflow transaction as 3.4 shows it, the parts the SDK reads. */
export interface WorkflowView {
  gid: string;
  mode: Mode;
  status: GlobalStatus;
  reason: RollbackReason | null;
  /** The begin's `input`. */
  input: Json;
  /** The commit's `result` (null before, or when the commit carried none). */
  result: Json;
  branches: WorkflowStepView[];
}

/** A begin of mode workflow (PROTOCOL.md 3.7), `mode` aside. */
export interface WorkflowBeginRequest {
  gid: string;
  timeoutMs?: number;
  metadata?: JsonObject;
  /** The host (a registered participant) and the workflow's name, an action of it with mode workflow. */
  workflow: { participant: string; name: string };
  input: Json;
}

/** What a local step asks the coordinator to call if the workflow rolls back. */
export interface LocalCompensation {
  participant: string;
  action: string;
  payload?: JsonObject;
}

/** The body of `POST /v1/transactions/{gid}/steps` (PROTOCOL.md 3.7). */
export type StepRecordRequest =
  | { stepId: string; kind: BranchStepKind; participant: string; action: string; payload: JsonObject }
  | { stepId: string; kind: 'local'; result: Json; compensate?: LocalCompensation };

/** The coordinator's answer to a step, by its status and error code (3.7, as 3.2 and 3.6). */
export type StepAnswer =
  /** `201`: recorded; a branch step's phase 1 succeeded. `result` is the recorded one (a repeat returns the first). */
  | { kind: 'recorded'; status: BranchStatus; result: Json }
  /** `202`: the participant answered long-running; read the transaction until the step settles (3.6). */
  | { kind: 'ongoing'; retryAfterMs: number | null }
  /** `409 BRANCH_FAILED`: the participant refused; `lastError` is its answer. */
  | { kind: 'failed'; lastError: Json }
  /** `502`/`504 BRANCH_UNKNOWN`: no answer in time; the outcome is unknown. */
  | { kind: 'unknown'; lastError: Json }
  /** `409 STEP_MISMATCH`: the stepId was recorded with another kind, participant or action. */
  | { kind: 'mismatch'; message: string }
  /** `409 TX_NOT_ACTIVE`: the workflow was decided meanwhile. */
  | { kind: 'not_active'; message: string };

/** The coordinator's answer to a commit or rollback (PROTOCOL.md 3.3). */
export type DecisionAnswer =
  | { kind: 'accepted'; status: GlobalStatus }
  /**
   * `409 CANNOT_COMMIT`: a step was failed or pending, the coordinator rolled back instead.
   * `409 TX_ALREADY_DECIDED`: the other decision was taken first.
   */
  | { kind: 'refused'; code: 'CANNOT_COMMIT' | 'TX_ALREADY_DECIDED'; message: string };

/**
 * What the workflow runner needs of the coordinator: the REST API of PROTOCOL.md 3.1, 3.3, 3.4
 * and 3.7, with the answers that drive a workflow turned into values. Any other error answer
 * (no coordinator reachable, 4xx for bad input, 404) is thrown as a CoordinatorError.
 * HttpWorkflowCoordinator is the real one; tests play the coordinator with an in-memory one.
 */
export interface WorkflowCoordinator {
  /** Begins the workflow; `created` is false when the gid already existed with the same body (`200`). */
  begin(request: WorkflowBeginRequest): Promise<{ created: boolean; view: WorkflowView }>;
  recordStep(gid: string, step: StepRecordRequest): Promise<StepAnswer>;
  get(gid: string): Promise<WorkflowView>;
  /** Commits, with the function's return as the workflow's `result` (omitted when undefined). */
  commit(gid: string, result: Json | undefined): Promise<DecisionAnswer>;
  rollback(gid: string): Promise<DecisionAnswer>;
}

/** The Nest token of the WorkflowCoordinator the runner and the client use. */
export const WORKFLOW_COORDINATOR = Symbol('dtx:workflow-coordinator');
