import type { Json, JsonObject } from '@nest-dtx/protocol';
import type { LocalCompensation } from './workflow-coordinator.js';

export interface WorkflowStepOptions {
  /**
   * The step's id, `[A-Za-z0-9_.:-]{1,128}`, unique within the workflow. Default: the step's
   * place in call order, `1` for the first step call of the run, `2` for the next... Every step
   * call takes a place, given an id or not.
   */
  stepId?: string;
}

export interface LocalStepOptions extends WorkflowStepOptions {
  /** What the coordinator calls (phase `compensate`) if the workflow rolls back after this step was recorded. */
  compensate?: LocalCompensation;
}

/**
 * What a @Workflow method receives: the workflow's input, and its steps. Each step is recorded
 * by the coordinator before the call returns (PROTOCOL.md 3.7), so that a run after a crash or
 * a resume gets the recorded outcome back instead of calling anyone twice.
 *
 * A branch step (`tcc`, `twoPhase`, `saga`) resolves with its participant's result, or throws
 * WorkflowStepFailedError (the participant refused) or WorkflowStepUnknownError (no answer in
 * time), which the function may catch. A step the participant answers long-running (`202`,
 * 3.6) resolves once the coordinator has its final answer. A WorkflowInterruptedError
 * (StepMismatchError among them) ends the run without a decision, even if caught.
 */
export interface WorkflowContext<Input = Json> {
  /** The workflow's gid (its global transaction). */
  readonly gid: string;
  /** The workflow's name, as @Workflow declared it. */
  readonly name: string;
  /** The input the workflow was begun with, as JSON brought it back. */
  readonly input: Input;

  /** A TCC branch: `try` now; `confirm` when the workflow commits, `cancel` when it rolls back. */
  tcc<Result = Json>(participant: string, action: string, payload?: JsonObject, options?: WorkflowStepOptions): Promise<Result>;
  /** A 2PC branch: `prepare` now; `commit` or `rollback` when the workflow is decided. */
  twoPhase<Result = Json>(participant: string, action: string, payload?: JsonObject, options?: WorkflowStepOptions): Promise<Result>;
  /** The same as `twoPhase`: an XaAction participant is a 2PC branch. */
  xa<Result = Json>(participant: string, action: string, payload?: JsonObject, options?: WorkflowStepOptions): Promise<Result>;
  /** A saga branch: `execute` now (committed at once); `compensate` if the workflow rolls back. */
  saga<Result = Json>(participant: string, action: string, payload?: JsonObject, options?: WorkflowStepOptions): Promise<Result>;
  /**
   * Code of the host's own, the only place for what is not deterministic (the clock, random
   * numbers, reading a database or calling a service outside a branch): `work` runs once, its
   * result (JSON) is recorded, and a replay gets the recorded result without running `work`.
   * The first run gets the result as JSON brings it back too (a Date becomes its ISO string,
   * undefined becomes null), so that both runs see the same value. If `work` throws, nothing
   * is recorded and the error is the step's.
   */
  local<Result>(work: () => Result | Promise<Result>, options?: LocalStepOptions): Promise<Result>;
}
