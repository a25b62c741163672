import { SetMetadata } from '@nestjs/common';

export const WORKFLOW_METADATA = 'dtx:workflow';

/** What @Workflow records on its method. */
export interface WorkflowMetadata {
  /** The workflow's name: the action the host registers with mode `workflow`. */
  name: string;
}

/**
 * Declares a workflow (PROTOCOL.md 3.7): a durable function of this participant (its host) that
 * calls tcc, 2pc and saga branches and runs local code in any order, through the
 * WorkflowContext it receives (`wf.tcc`, `wf.twoPhase`, `wf.saga`, `wf.local`). The method
 * may be on any provider of the app that imports DtxParticipantModule; the participant
 * registers an action of that name with mode `workflow`, and WorkflowClient starts it. What it
 * returns (JSON) becomes the commit's `result`; what it throws rolls the workflow back.
 *
 * **It must be deterministic.** After a crash, or when the coordinator resumes a workflow that
 * went quiet, the function runs again from the start, and each step it asks for is answered
 * from the coordinator's record (matched by step id) instead of being run again. That only
 * works if the new run makes the same step calls, in the same order, with the same kinds,
 * participants and actions; one that does not fails with StepMismatchError, and the workflow is
 * left to roll back at its deadline. So, outside `wf.local`:
 * - no `Date.now()`, `new Date()`, `Math.random()`, `randomUUID()`, timers or environment reads
 *   that decide anything;
 * - no I/O (no database, HTTP or file reads, no calls to other services except through steps);
 * - no reading of mutable state outside the function (fields of the provider, module-level
 *   variables, caches) that decides anything;
 * - step payloads derived only from `wf.input` and earlier steps' results.
 *
 * Put what is not deterministic in `wf.local(() => ...)`: it runs once and its result is
 * recorded. Everything a step does happens under its participant's barrier, as for any branch.
 */
export function Workflow(name?: string): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    SetMetadata<string, WorkflowMetadata>(WORKFLOW_METADATA, { name: name ?? String(propertyKey) })(target, propertyKey, descriptor);
  };
}
