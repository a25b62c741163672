import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Json, JsonObject } from '@nest-dtx/protocol';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from '../participant/participant.options.js';
import { WORKFLOW_COORDINATOR, type WorkflowCoordinator } from './workflow-coordinator.js';
import { WorkflowRunner, type WorkflowOutcome } from './workflow-runner.js';
import { WorkflowRegistry } from './workflow.registry.js';

export interface WorkflowStartOptions {
  /** The workflow's gid, `[A-Za-z0-9_.:-]{1,128}`; default a random UUID. Starting the same gid with the same input again finds the first. */
  gid?: string;
  /** How long it may stay active before the coordinator rolls it back (reason `timeout`); default the coordinator's. */
  timeoutMs?: number;
  metadata?: JsonObject;
}

/**
 * Starts the workflows this app hosts (@Workflow), and waits for their outcome. Begins the
 * workflow at the coordinator (PROTOCOL.md 3.7) with this participant as its host, then runs it
 * here, in the background. A gid that already exists (begun before with the same body: the
 * coordinator answers `200`) is run again: its recorded steps replay, or, if it was decided,
 * nothing runs.
 */
@Injectable()
export class WorkflowClient {
  private readonly logger = new Logger('DtxWorkflow');

  constructor(
    @Inject(WORKFLOW_COORDINATOR) private readonly coordinator: WorkflowCoordinator,
    private readonly runner: WorkflowRunner,
    private readonly registry: WorkflowRegistry,
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
  ) {}

  /** Begins the workflow and runs it in the background; resolves with its gid once the coordinator has it (durably). */
  async start(name: string, input: Json, options: WorkflowStartOptions = {}): Promise<string> {
    const { gid } = await this.begin(name, input, options);
    return gid;
  }

  /**
   * Begins the workflow, runs it, and resolves with its result once the commit decision is
   * durable (the coordinator then confirms / commits its steps, PROTOCOL.md 5.3). Rejects with
   * WorkflowRolledBackError when it was rolled back (its function threw, a commit the coordinator
   * refused, a deadline), or with the WorkflowInterruptedError that stopped the run (the
   * workflow then stays with the coordinator, which resumes it: see StepMismatchError for the
   * one that cannot be resumed).
   */
  async run<Result = Json>(name: string, input: Json, options: WorkflowStartOptions = {}): Promise<Result> {
    const outcome = await (await this.begin(name, input, options)).outcome;
    if (outcome.status === 'committed') return outcome.result as Result;
    throw outcome.error;
  }

  private async begin(name: string, input: Json, options: WorkflowStartOptions): Promise<{ gid: string; outcome: Promise<WorkflowOutcome> }> {
    if (!this.registry.get(name)) throw new Error(`no workflow ${name} is hosted here (declare it with @Workflow('${name}') on a provider of this app)`);
    const gid = options.gid ?? randomUUID();
    const { created } = await this.coordinator.begin({
      gid,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.metadata ? { metadata: options.metadata } : {}),
      workflow: { participant: this.options.name, name },
      input,
    });
    if (!created) this.logger.log(`workflow ${name} gid=${gid} existed already: running it again (its recorded steps replay)`);
    return { gid, outcome: this.runner.run(gid, name, input) };
  }
}
