import { setTimeout as delay } from 'node:timers/promises';
import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { Json, PhaseCallBody, RollbackReason } from '@nest-dtx/protocol';
import { WORKFLOW_COORDINATOR, type DecisionAnswer, type WorkflowCoordinator, type WorkflowView } from './workflow-coordinator.js';
import { describeStep, StepMismatchError, WorkflowInterruptedError, WorkflowNotActiveError, WorkflowRolledBackError } from './workflow-errors.js';
import { WorkflowRun, type StepPolling } from './workflow-run.js';
import { WorkflowRegistry, type WorkflowDefinition } from './workflow.registry.js';

/** How a run of a workflow ended. */
export type WorkflowOutcome =
  /** The commit decision is durable (status `committing` or `committed`); `result` is the workflow's. */
  | { gid: string; status: 'committed'; result: Json }
  /** Rolled back: by this run (its function threw, or the coordinator refused its commit) or elsewhere. */
  | { gid: string; status: 'rolled_back'; error: WorkflowRolledBackError }
  /** Stopped without deciding (see WorkflowInterruptedError): the coordinator resumes it, or rolls it back at its deadline. */
  | { gid: string; status: 'interrupted'; error: WorkflowInterruptedError };

/** What a resume call is answered (the dispatcher's answer kinds it uses). */
export type ResumeAnswer =
  | { kind: 'ok'; result: Json }
  | { kind: 'failed'; message: string; details: Json }
  | { kind: 'invalid'; message: string }
  | { kind: 'ongoing'; retryAfterMs?: number };

export interface WorkflowRunnerSettings {
  /** A step answered long-running (202) is read back after this, then after twice as long each time... */
  stepPollFirstDelayMs: number;
  /** ...up to this. */
  stepPollMaxDelayMs: number;
  /**
   * How long a resume call waits for the run before it answers `202`: long enough for a replay
   * that only needs its record to decide and be answered `2xx` in the same call, well under the
   * coordinator's call timeout (5 s by default).
   */
  resumeAnswerWaitMs: number;
}

export const WORKFLOW_RUNNER_DEFAULTS: Readonly<WorkflowRunnerSettings> = {
  stepPollFirstDelayMs: 200,
  stepPollMaxDelayMs: 5_000,
  resumeAnswerWaitMs: 1_000,
};

/** The Nest token of partial WorkflowRunnerSettings (optional; the defaults apply). */
export const WORKFLOW_RUNNER_SETTINGS = Symbol('dtx:workflow-runner-settings');

/**
 * Runs the host's workflows: after a start (WorkflowClient), and when the coordinator resumes
 * one (PROTOCOL.md 3.7). At most one run per gid in this process: a start or a resume of a gid
 * already running joins that run. A run reads the transaction first: a decided workflow is not
 * run again; an active one runs its function with the recorded steps replayed (WorkflowRun),
 * then commits with what it returned or rolls back on what it threw. An interruption
 * (WorkflowInterruptedError) decides nothing.
 */
@Injectable()
export class WorkflowRunner implements OnApplicationShutdown {
  private readonly logger = new Logger('DtxWorkflow');
  private readonly running = new Map<string, Promise<WorkflowOutcome>>();
  private readonly stopping = new AbortController();
  private readonly settings: WorkflowRunnerSettings;

  constructor(
    @Inject(WORKFLOW_COORDINATOR) private readonly coordinator: WorkflowCoordinator,
    private readonly registry: WorkflowRegistry,
    @Optional() @Inject(WORKFLOW_RUNNER_SETTINGS) settings?: Partial<WorkflowRunnerSettings>,
  ) {
    this.settings = { ...WORKFLOW_RUNNER_DEFAULTS, ...settings };
  }

  onApplicationShutdown(): void {
    this.stopping.abort();
  }

  /** Whether this process is running that workflow now. */
  isRunning(gid: string): boolean {
    return this.running.has(gid);
  }

  /**
   * Runs the workflow `name` of `gid`, or joins the run of it under way here. `input` is used
   * only if the transaction does not show its own. Never rejects: how it ended is the outcome.
   */
  run(gid: string, name: string, input: Json = null): Promise<WorkflowOutcome> {
    const underWay = this.running.get(gid);
    if (underWay) return underWay;
    const run = this.execute(gid, name, input)
      .catch((error: unknown): WorkflowOutcome => {
        // A bug of the runner itself: said, and left to the coordinator like any interruption.
        this.logger.error(`workflow ${name} gid=${gid}: ${(error as Error).stack ?? String(error)}`);
        return { gid, status: 'interrupted', error: new WorkflowInterruptedError(gid, `workflow ${gid}: ${(error as Error).message}`, { cause: error }) };
      })
      .finally(() => this.running.delete(gid));
    this.running.set(gid, run);
    return run;
  }

  /**
   * The coordinator's `POST {endpoint}/{name}/resume` (3.7): the run of that gid, started in the
   * background if none is under way. Answered `2xx` once the run has decided (its commit or
   * rollback was answered), `202` while it runs. A run that cannot replay (StepMismatchError)
   * is answered `409`, which the coordinator retries and flags for attention, as any phase 2
   * it cannot deliver; any other interruption `202`, so that it asks again later.
   */
  async answerResume(call: PhaseCallBody): Promise<ResumeAnswer> {
    if (!this.registry.get(call.action)) return { kind: 'invalid', message: `no workflow ${call.action} is hosted here` };
    if (call.phase !== 'resume') return { kind: 'invalid', message: `a workflow is only resumed (phase resume), not ${call.phase}` };
    const run = this.run(call.gid, call.action, call.payload);
    const outcome = await Promise.race([run, delay(this.settings.resumeAnswerWaitMs, null, { ref: false })]);
    if (outcome === null) return { kind: 'ongoing' };
    switch (outcome.status) {
      case 'committed':
        return { kind: 'ok', result: { status: 'committed', result: outcome.result } };
      case 'rolled_back':
        return { kind: 'ok', result: { status: 'rolled_back', reason: outcome.error.reason } };
      case 'interrupted':
        if (outcome.error instanceof StepMismatchError) {
          return { kind: 'failed', message: outcome.error.message, details: { reason: 'step_mismatch' } };
        }
        return { kind: 'ongoing' };
    }
  }

  private async execute(gid: string, name: string, givenInput: Json): Promise<WorkflowOutcome> {
    const definition = this.registry.get(name);
    if (!definition) throw new Error(`no workflow ${name} is hosted here`);
    let view: WorkflowView;
    try {
      view = await this.coordinator.get(gid);
    } catch (error) {
      return this.interrupted(name, new WorkflowInterruptedError(gid, `workflow ${gid} could not be read: ${(error as Error).message}`, { cause: error }));
    }
    if (view.mode !== 'workflow') throw new Error(`transaction ${gid} is a ${view.mode} transaction, not a workflow`);
    const decided = this.alreadyDecided(view);
    if (decided) return decided;

    const run = new WorkflowRun({
      gid,
      name,
      input: view.input ?? givenInput,
      coordinator: this.coordinator,
      recorded: view.branches,
      polling: { firstDelayMs: this.settings.stepPollFirstDelayMs, maxDelayMs: this.settings.stepPollMaxDelayMs } satisfies StepPolling,
      signal: this.stopping.signal,
    });
    const returned = await this.call(definition, run);
    // Checked first: an interruption decides nothing, whatever the function did with it.
    if (run.interruption) return this.afterInterruption(name, run.interruption);
    if (!returned.ok) return this.rollBack(name, gid, returned.error);
    const skipped = run.notReplayed();
    if (skipped.length > 0) {
      const list = skipped.map((step) => `${step.branchId} (${describeStep(step)})`).join(', ');
      return this.interrupted(
        name,
        new StepMismatchError(gid, `workflow ${name} (gid ${gid}) did not replay the way it ran: it returned without asking for recorded step(s) ${list}`, null, null),
      );
    }
    return this.commit(name, gid, returned.value);
  }

  private async call(definition: WorkflowDefinition, run: WorkflowRun): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
    try {
      return { ok: true, value: await definition.run(run) };
    } catch (error) {
      return { ok: false, error };
    }
  }

  private async commit(name: string, gid: string, value: unknown): Promise<WorkflowOutcome> {
    let result: Json | undefined;
    try {
      // As JSON brings it back: what the coordinator keeps and shows as the workflow's result.
      result = value === undefined ? undefined : (JSON.parse(JSON.stringify(value) ?? 'null') as Json);
    } catch (error) {
      return this.rollBack(name, gid, new Error(`workflow ${name} returned a result that is not JSON: ${(error as Error).message}`, { cause: error }));
    }
    const answer = await this.decide(gid, () => this.coordinator.commit(gid, result));
    if (answer instanceof WorkflowInterruptedError) return this.interrupted(name, answer);
    if (answer.kind === 'accepted') {
      this.logger.log(`workflow ${name} gid=${gid} committed`);
      return { gid, status: 'committed', result: result ?? null };
    }
    // CANNOT_COMMIT: a step was failed or pending, the coordinator rolled back instead.
    // TX_ALREADY_DECIDED: it was rolled back before (deadline, operator).
    const view = await this.coordinator.get(gid).catch(() => null);
    const reason: RollbackReason | null = view?.reason ?? (answer.code === 'CANNOT_COMMIT' ? 'branch_failed' : null);
    const error = new WorkflowRolledBackError(gid, reason, `workflow ${name} (gid ${gid}) was rolled back instead of committed: ${answer.message} (${answer.code})`);
    this.logger.warn(error.message);
    return { gid, status: 'rolled_back', error };
  }

  private async rollBack(name: string, gid: string, cause: unknown): Promise<WorkflowOutcome> {
    const why = cause instanceof Error ? cause.message : String(cause);
    this.logger.warn(`workflow ${name} gid=${gid} threw, rolling it back: ${why}`);
    const answer = await this.decide(gid, () => this.coordinator.rollback(gid));
    if (answer instanceof WorkflowInterruptedError) return this.interrupted(name, answer);
    if (answer.kind === 'refused') {
      // TX_ALREADY_DECIDED: committed first (a concurrent run of the same workflow): that is its outcome.
      const view = await this.coordinator.get(gid).catch(() => null);
      const decided = view ? this.alreadyDecided(view) : null;
      if (decided) return decided;
      return this.interrupted(name, new WorkflowInterruptedError(gid, `workflow ${gid}: rollback refused (${answer.code}): ${answer.message}`));
    }
    return { gid, status: 'rolled_back', error: new WorkflowRolledBackError(gid, 'client', `workflow ${name} (gid ${gid}) threw and was rolled back: ${why}`, { cause }) };
  }

  /** A commit or rollback request; an interruption when the coordinator could not be asked (the resume decides later). */
  private async decide(gid: string, request: () => Promise<DecisionAnswer>): Promise<DecisionAnswer | WorkflowInterruptedError> {
    try {
      return await request();
    } catch (error) {
      return new WorkflowInterruptedError(gid, `workflow ${gid} could not be decided: ${(error as Error).message}`, { cause: error });
    }
  }

  /** The outcome of a workflow that is no longer active, or null while it is. */
  private alreadyDecided(view: WorkflowView): WorkflowOutcome | null {
    switch (view.status) {
      case 'active':
        return null;
      case 'committing':
      case 'committed':
        return { gid: view.gid, status: 'committed', result: view.result };
      case 'rolling_back':
      case 'rolled_back':
        return {
          gid: view.gid,
          status: 'rolled_back',
          error: new WorkflowRolledBackError(view.gid, view.reason, `workflow ${view.gid} was rolled back${view.reason ? ` (reason ${view.reason})` : ''}`),
        };
    }
  }

  /** An interruption's outcome; the workflow's own when it was decided meanwhile (WorkflowNotActiveError). */
  private async afterInterruption(name: string, error: WorkflowInterruptedError): Promise<WorkflowOutcome> {
    if (error instanceof WorkflowNotActiveError) {
      const view = await this.coordinator.get(error.gid).catch(() => null);
      const decided = view ? this.alreadyDecided(view) : null;
      if (decided) {
        this.logger.warn(`workflow ${name} gid=${error.gid} was decided while it ran (${view?.status}${view?.reason ? `, reason ${view.reason}` : ''})`);
        return decided;
      }
    }
    return this.interrupted(name, error);
  }

  private interrupted(name: string, error: WorkflowInterruptedError): WorkflowOutcome {
    if (error instanceof StepMismatchError) {
      this.logger.error(`${error.message}. The workflow is not deterministic (see @Workflow): this run stops without deciding, and the coordinator rolls it back at its deadline`);
    } else {
      this.logger.warn(`workflow ${name} gid=${error.gid}: run stopped without deciding (${error.message}); the coordinator resumes it later`);
    }
    return { gid: error.gid, status: 'interrupted', error };
  }
}
