import { Inject, Injectable, Logger, Optional, type OnApplicationBootstrap } from '@nestjs/common';
import { MODE_PHASES, MSG_CHECK_BRANCH_ID, type BranchLocks, type Json, type PhaseCallBody } from '@nest-dtx/protocol';
import { OngoingNotSupportedError } from '../data-layers/core/ongoing-answer.js';
import { DtxSchemaError } from '../data-layers/core/schema.js';
import { AtBranches } from './at-branches.js';
import { BranchBarrier, type BarrierOutcome } from './barrier.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';
import { PreparedTransactions } from './prepared-transactions.js';
import { branchContext, ParticipantExplorer } from './participant.explorer.js';
import { ParticipantSchema } from './participant-schema.js';
import { isPhaseCall } from './phase-call.js';
import { WorkflowRunner } from '../workflow/workflow-runner.js';

/** A transport-neutral answer: the HTTP controller and the message handlers map it. */
export type DispatchAnswer =
  /** `locks`: an AT prepare's locked rows, which the transports send beside the result. */
  | { kind: 'ok'; result: Json; locks?: BranchLocks }
  | { kind: 'failed'; message: string; details: Json }
  | { kind: 'invalid'; message: string }
  /** The SDK's tables are not in the database (a migration not run, a table dropped): transient, it clears once they are. */
  | { kind: 'schema_missing'; message: string }
  /** Accepted, outcome not known yet (PROTOCOL.md 3.6), from a business method's ongoing() or a workflow's resume: HTTP `202`, message transports `{ outcome: 'ongoing' }`. */
  | { kind: 'ongoing'; retryAfterMs?: number }
  /** An XaAction or AtAction answered ongoing(), which they cannot (a participant bug): 500, transient. */
  | { kind: 'ongoing_not_supported'; message: string };

/**
 * Runs one phase call through the barrier (or, for XA actions, a prepared transaction; for AT
 * actions, the undo log and row locks) and the business method the decorators declared.
 */
@Injectable()
export class BranchDispatcher implements OnApplicationBootstrap {
  private readonly logger = new Logger('DtxParticipant');

  constructor(
    private readonly explorer: ParticipantExplorer,
    private readonly barrier: BranchBarrier,
    private readonly prepared: PreparedTransactions,
    private readonly atBranches: AtBranches,
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
    private readonly schema: ParticipantSchema,
    /** The host's workflows (PROTOCOL.md 3.7); optional so that a dispatcher can be built without them. */
    @Optional() private readonly workflows?: WorkflowRunner,
  ) {}

  /** After a restart, prepared transactions may be waiting: say so, and leave them to the coordinator. */
  async onApplicationBootstrap(): Promise<void> {
    const xaActions = this.explorer.list().filter((a) => a.xa);
    if (xaActions.length === 0) return;
    if (!this.prepared.supported) {
      throw new Error(
        `participant ${this.options.name}: XaAction ${xaActions.map((a) => a.name).join(', ')} needs prepared (XA) transactions, which ${this.barrier.description} does not have`,
      );
    }
    const pending = await this.prepared.listOwn(this.options.name);
    if (pending.length > 0) {
      this.logger.log(`${pending.length} prepared transaction(s) wait for the coordinator's decision: ${pending.join(', ')}`);
    }
  }

  async dispatch(body: unknown): Promise<DispatchAnswer> {
    try {
      return await this.dispatchCall(body);
    } catch (error) {
      // Both named rather than a bare 5xx: the coordinator keeps it as the branch's lastError, so
      // the operator reads which table is missing and which migration makes it, or which action
      // answered what it cannot.
      if (error instanceof OngoingNotSupportedError) {
        const call = body as PhaseCallBody;
        const message = `${call.action}/${call.phase} of ${call.gid}/${call.branchId}: ${error.message}`;
        this.logger.error(`participant bug: ${message}`);
        return { kind: 'ongoing_not_supported', message };
      }
      if (!(error instanceof DtxSchemaError)) throw error;
      this.schema.metByCall(error);
      return { kind: 'schema_missing', message: error.message };
    }
  }

  private async dispatchCall(body: unknown): Promise<DispatchAnswer> {
    if (!isPhaseCall(body)) return { kind: 'invalid', message: 'not a phase call (PROTOCOL.md 5.1)' };
    // A workflow's resume goes to its host's workflow runner, not to a branch's phases: no barrier
    // row either, the coordinator's record of its steps is what makes a second run harmless.
    if (body.mode === 'workflow') {
      return this.workflows ? this.workflows.answerResume(body) : { kind: 'invalid', message: `no workflow ${body.action} is hosted here` };
    }
    const action = this.explorer.get(body.action, body.mode);
    if (!action) return { kind: 'invalid', message: `no ${body.mode} action ${body.action}` };
    if (action.builtIn === 'msg-check') return this.answerCheck(body);
    // The caller's local transaction keeps its barrier row under branch `check` (BranchBarrier.runLocal):
    // a delivery under that id would share it. The coordinator refuses such a branch at begin.
    if (body.mode === 'msg' && body.branchId === MSG_CHECK_BRANCH_ID) {
      return { kind: 'invalid', message: `branchId ${MSG_CHECK_BRANCH_ID} is msg's check-back, not a branch` };
    }
    const phases = MODE_PHASES[body.mode];
    if (body.phase !== phases.phase1 && body.phase !== phases.commit && body.phase !== phases.rollback) {
      return { kind: 'invalid', message: `phase ${body.phase} does not belong to mode ${body.mode}` };
    }
    const handler = action.handlers[body.phase] ?? action.handlers[phases.phase1];
    if (!handler || (!action.xa && !action.at && !action.handlers[body.phase])) {
      return { kind: 'invalid', message: `action ${body.action} has no ${body.phase} method` };
    }
    // An XaAction's or AtAction's answer of ongoing() is refused by their data layers (OngoingNotSupportedError).
    const business = async (tx: unknown) => handler(body.payload, branchContext(body, tx));

    let outcome: BarrierOutcome;
    if (action.at) {
      if (body.phase === phases.phase1) outcome = await this.atBranches.prepare(body, business);
      else if (body.phase === phases.commit) outcome = await this.atBranches.commit(body);
      else outcome = await this.atBranches.rollback(body);
    } else if (action.localStepCompensation) {
      // Only its compensate has a method (checked above): no phase 1 ever reaches it, by design.
      outcome = await this.barrier.run(body, business, { kind: 'undo' });
    } else if (!action.xa) outcome = await this.barrier.run(body, business);
    else if (body.phase === phases.phase1) outcome = await this.prepared.prepare(this.options.name, body, business);
    else if (body.phase === phases.commit) outcome = await this.prepared.commit(this.options.name, body);
    else outcome = await this.prepared.rollback(this.options.name, body);
    return this.answer(body, outcome);
  }

  /**
   * msg's check-back (PROTOCOL.md 3.1), answered from the barrier alone with its `check` rule:
   * 2xx (the result the local transaction stored) if the caller's local transaction for `gid`
   * committed; otherwise the check takes the row's slot, so that a local transaction still to
   * come, or still open, can never commit, and answers 409. A local transaction open while the
   * check arrives holds the row: on a SQL store the check waits for it to end and answers by its
   * outcome; on Redis it takes the slot first and the local transaction is refused at its script.
   */
  private async answerCheck(body: PhaseCallBody): Promise<DispatchAnswer> {
    if (body.phase !== 'check' || body.branchId !== MSG_CHECK_BRANCH_ID) {
      return { kind: 'invalid', message: `${body.action} answers only phase check of branch ${MSG_CHECK_BRANCH_ID}` };
    }
    // The check rule never decides to run: there is no business work.
    const outcome = await this.barrier.run(body, () => Promise.resolve(null));
    this.logger.log(`gid=${body.gid} check-back: the local transaction ${outcome.kind === 'ok' ? 'committed' : 'did not commit (and now never will)'}`);
    return outcome.kind === 'ok' ? { kind: 'ok', result: outcome.result } : outcome;
  }

  private answer(body: PhaseCallBody, outcome: BarrierOutcome): DispatchAnswer {
    if (outcome.kind === 'failed') {
      this.logger.log(`gid=${body.gid} branchId=${body.branchId} ${body.action}/${body.phase} refused: ${outcome.message}`);
      return outcome;
    }
    if (outcome.kind === 'ongoing') {
      const hint = outcome.retryAfterMs === undefined ? '' : ` (ask again in ${outcome.retryAfterMs} ms)`;
      this.logger.debug(`gid=${body.gid} branchId=${body.branchId} ${body.action}/${body.phase} ongoing${hint}`);
      return outcome;
    }
    if (outcome.duplicate || outcome.skipped) {
      this.logger.log(`gid=${body.gid} branchId=${body.branchId} ${body.action}/${body.phase} ${outcome.duplicate ? 'duplicate' : 'null compensation'}: skipped`);
    }
    return outcome.locks ? { kind: 'ok', result: outcome.result, locks: outcome.locks } : { kind: 'ok', result: outcome.result };
  }
}
