import { setTimeout as delay } from 'node:timers/promises';
import { ID_PATTERN, type Json, type JsonObject } from '@nest-dtx/protocol';
import { CoordinatorError } from '../client/coordinator-error.js';
import type { LocalStepOptions, WorkflowContext, WorkflowStepOptions } from './workflow-context.js';
import type { BranchStepKind, StepAnswer, StepRecordRequest, WorkflowCoordinator, WorkflowStepView } from './workflow-coordinator.js';
import {
  describeStep,
  StepMismatchError,
  WorkflowDefinitionError,
  WorkflowInterruptedError,
  WorkflowNotActiveError,
  WorkflowStepFailedError,
  WorkflowStepUnknownError,
  type StepIdentity,
} from './workflow-errors.js';

/** How a step answered long-running (202) is waited for: reads of the transaction, from the first delay doubling up to the longest. */
export interface StepPolling {
  firstDelayMs: number;
  maxDelayMs: number;
}

export interface WorkflowRunSetup {
  gid: string;
  name: string;
  input: Json;
  coordinator: WorkflowCoordinator;
  /** The steps the coordinator had recorded when the run began (3.4's `branches`). */
  recorded: readonly WorkflowStepView[];
  polling: StepPolling;
  /** Aborted when the host shuts down: a wait for a long-running step ends there. */
  signal: AbortSignal;
}

/**
 * Answers the coordinator gives to a step that are about its input, so the same on every run:
 * a payload that is not valid, too large, a participant or action that is not registered. The
 * step was neither recorded nor sent, and the function gets the error (uncaught, it rolls back).
 */
const refusesTheStepItself = (error: CoordinatorError): boolean => error.statusCode === 400 || error.statusCode === 413;

/** Participant names are case-insensitive at the coordinator: the record holds the registered spelling. */
const sameParticipant = (recorded: string | null, asked: string | null): boolean =>
  recorded === null || asked === null || recorded.toLowerCase() === asked.toLowerCase();

/** `value` as JSON brings it back, so the first run sees what a replay will (a Date as its string, undefined as null). */
function asJson(value: unknown, step: StepIdentity): Json {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new WorkflowDefinitionError(`step ${step.stepId} (local): its result cannot be recorded as JSON (${(error as Error).message})`);
  }
  return text === undefined ? null : (JSON.parse(text) as Json);
}

/**
 * One run of a workflow function: the WorkflowContext it receives. Each step call takes the next
 * place in call order (its default id), synchronously, before anything is awaited, so that steps
 * started together (`Promise.all`) get the same ids on every run. A step the record holds is
 * answered from it: nobody is called and local code does not run. Any other is sent
 * (PROTOCOL.md 3.7), and its answer recorded by the coordinator before it comes back.
 */
export class WorkflowRun implements WorkflowContext<Json> {
  readonly gid: string;
  readonly name: string;
  readonly input: Json;
  private readonly recorded: ReadonlyMap<string, WorkflowStepView>;
  /** Every step id this run asked for. */
  private readonly asked = new Set<string>();
  private calls = 0;
  private interruptedBy: WorkflowInterruptedError | null = null;

  constructor(private readonly setup: WorkflowRunSetup) {
    this.gid = setup.gid;
    this.name = setup.name;
    this.input = setup.input;
    this.recorded = new Map(setup.recorded.map((step) => [step.branchId, step]));
  }

  /** Why the run stopped without a decision, if it did (kept even when the function caught it). */
  get interruption(): WorkflowInterruptedError | null {
    return this.interruptedBy;
  }

  /** Steps an earlier run recorded that this one never asked for: a replay that went another way. */
  notReplayed(): WorkflowStepView[] {
    return [...this.recorded.values()].filter((step) => !this.asked.has(step.branchId));
  }

  tcc<Result = Json>(participant: string, action: string, payload: JsonObject = {}, options: WorkflowStepOptions = {}): Promise<Result> {
    return this.branch<Result>('tcc', participant, action, payload, options);
  }

  twoPhase<Result = Json>(participant: string, action: string, payload: JsonObject = {}, options: WorkflowStepOptions = {}): Promise<Result> {
    return this.branch<Result>('2pc', participant, action, payload, options);
  }

  xa<Result = Json>(participant: string, action: string, payload: JsonObject = {}, options: WorkflowStepOptions = {}): Promise<Result> {
    return this.twoPhase<Result>(participant, action, payload, options);
  }

  saga<Result = Json>(participant: string, action: string, payload: JsonObject = {}, options: WorkflowStepOptions = {}): Promise<Result> {
    return this.branch<Result>('saga', participant, action, payload, options);
  }

  async local<Result>(work: () => Result | Promise<Result>, options: LocalStepOptions = {}): Promise<Result> {
    const step = this.nextStep('local', null, null, options.stepId);
    const recorded = this.fromRecord(step);
    // A recorded local step is its result: the code does not run again.
    if (recorded) return recorded.result as Result;
    const value = asJson(await work(), step);
    this.throwIfInterrupted();
    const request: StepRecordRequest = { stepId: step.stepId, kind: 'local', result: value, ...(options.compensate ? { compensate: options.compensate } : {}) };
    const result = await this.send(step, request);
    // The recorded result wins: another run of the same workflow may have recorded this step first.
    return (result ?? value) as Result;
  }

  private async branch<Result>(kind: BranchStepKind, participant: string, action: string, payload: JsonObject, options: WorkflowStepOptions): Promise<Result> {
    const step = this.nextStep(kind, participant, action, options.stepId);
    const recorded = this.fromRecord(step);
    if (recorded?.status === 'prepared' || recorded?.status === 'committed') return recorded.result as Result;
    if (recorded?.status === 'failed') throw new WorkflowStepFailedError(this.gid, step, recorded.lastError);
    // Not recorded, or still pending (long-running, or its outcome unknown): the coordinator
    // answers the same stepId from its record and calls no one again (3.7).
    return (await this.send(step, { stepId: step.stepId, kind, participant, action, payload })) as Result;
  }

  /** The step's identity, its id taken from call order unless given. Synchronous: see the class. */
  private nextStep(kind: StepIdentity['kind'], participant: string | null, action: string | null, givenId: string | undefined): StepIdentity {
    this.throwIfInterrupted();
    this.calls += 1;
    const stepId = givenId ?? String(this.calls);
    if (!ID_PATTERN.test(stepId)) throw new WorkflowDefinitionError(`workflow ${this.name}: step id "${stepId}" is not ${ID_PATTERN.source}`);
    if (this.asked.has(stepId)) throw new WorkflowDefinitionError(`workflow ${this.name}: step id "${stepId}" is used twice in one run`);
    this.asked.add(stepId);
    return { stepId, kind, participant, action };
  }

  /** The recorded step of that id, checked to be the same step (else a mismatch); undefined when not recorded. */
  private fromRecord(step: StepIdentity): WorkflowStepView | undefined {
    const recorded = this.recorded.get(step.stepId);
    if (!recorded) return undefined;
    const same =
      recorded.kind === step.kind &&
      (step.kind === 'local' || (sameParticipant(recorded.participant, step.participant) && (recorded.action === null || recorded.action === step.action)));
    if (same) return recorded;
    const was: StepIdentity = { stepId: recorded.branchId, kind: recorded.kind, participant: recorded.participant, action: recorded.action };
    return this.interrupt(
      new StepMismatchError(
        this.gid,
        `workflow ${this.name} (gid ${this.gid}) did not replay the way it ran: step ${step.stepId} is recorded as ${describeStep(was)}, this run asked for ${describeStep(step)}`,
        step,
        was,
      ),
    );
  }

  /** Sends the step and turns the answer into its result or its error. */
  private async send(step: StepIdentity, request: StepRecordRequest): Promise<Json> {
    let answer: StepAnswer;
    try {
      answer = await this.setup.coordinator.recordStep(this.gid, request);
    } catch (error) {
      if (error instanceof CoordinatorError && refusesTheStepItself(error)) throw error;
      return this.interrupt(new WorkflowInterruptedError(this.gid, `workflow ${this.gid}: step ${step.stepId} could not be recorded: ${(error as Error).message}`, { cause: error }));
    }
    this.throwIfInterrupted();
    switch (answer.kind) {
      case 'recorded':
        return answer.result;
      case 'ongoing':
        return this.untilSettled(step, answer.retryAfterMs);
      case 'failed':
        throw new WorkflowStepFailedError(this.gid, step, answer.lastError);
      case 'unknown':
        throw new WorkflowStepUnknownError(this.gid, step, answer.lastError);
      case 'mismatch':
        return this.interrupt(
          new StepMismatchError(this.gid, `workflow ${this.name} (gid ${this.gid}) did not replay the way it ran: the coordinator refused step ${step.stepId} (${describeStep(step)}): ${answer.message}`, step, null),
        );
      case 'not_active':
        return this.interrupt(new WorkflowNotActiveError(this.gid, null));
    }
  }

  /**
   * A step answered long-running (3.6): reads the transaction, from `retryAfterMs` (or the first
   * delay) doubling up to the longest delay, until the step is prepared, committed or failed.
   * The workflow's deadline bounds the wait: past it the coordinator rolls the workflow back,
   * which ends the wait as an interruption.
   */
  private async untilSettled(step: StepIdentity, retryAfterMs: number | null): Promise<Json> {
    const { firstDelayMs, maxDelayMs } = this.setup.polling;
    for (let waitMs = retryAfterMs ?? firstDelayMs; ; waitMs = Math.min(waitMs * 2, maxDelayMs)) {
      try {
        await delay(waitMs, undefined, { signal: this.setup.signal });
      } catch {
        return this.interrupt(new WorkflowInterruptedError(this.gid, `workflow ${this.gid}: the host shut down while step ${step.stepId} was long-running`));
      }
      this.throwIfInterrupted();
      let view;
      try {
        view = await this.setup.coordinator.get(this.gid);
      } catch (error) {
        return this.interrupt(new WorkflowInterruptedError(this.gid, `workflow ${this.gid}: could not read it while step ${step.stepId} was long-running: ${(error as Error).message}`, { cause: error }));
      }
      if (view.status !== 'active') return this.interrupt(new WorkflowNotActiveError(this.gid, view.status));
      const branch = view.branches.find((candidate) => candidate.branchId === step.stepId);
      if (branch?.status === 'prepared' || branch?.status === 'committed') return branch.result;
      if (branch?.status === 'failed') throw new WorkflowStepFailedError(this.gid, step, branch.lastError);
    }
  }

  private throwIfInterrupted(): void {
    if (this.interruptedBy) throw this.interruptedBy;
  }

  /** Stops the run: the first interruption is kept, and thrown by every later step call. */
  private interrupt(error: WorkflowInterruptedError): never {
    this.interruptedBy ??= error;
    throw this.interruptedBy;
  }
}
