import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ID_PATTERN, MODE_PHASES, PHASES, MODES, type Json, type PhaseCallBody } from '@nest-dtx/protocol';
import { BranchBarrier, type BarrierOutcome } from './barrier.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';
import { PreparedTransactions } from './prepared-transactions.js';
import { ParticipantExplorer } from './participant.explorer.js';

/** A transport-neutral answer: the HTTP controller and the message handlers map it. */
export type DispatchAnswer =
  | { kind: 'ok'; result: Json }
  | { kind: 'failed'; message: string; details: Json }
  | { kind: 'invalid'; message: string };

function isPhaseCall(body: unknown): body is PhaseCallBody {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, unknown>;
  return (
    typeof b.gid === 'string' && ID_PATTERN.test(b.gid) &&
    typeof b.branchId === 'string' && ID_PATTERN.test(b.branchId) &&
    typeof b.action === 'string' &&
    MODES.includes(b.mode as never) &&
    PHASES.includes(b.phase as never) &&
    // The payload is a JSON object on every call the coordinator sends (it stores `{}` when a
    // branch has none; PROTOCOL.md 5.1). Anything else is no phase call: without this check a
    // signed call with `"payload": "x"`, or none, reached the barrier and the business (a
    // rollback phase left its null-compensation marker and answered 2xx).
    typeof b.payload === 'object' && b.payload !== null && !Array.isArray(b.payload)
  );
}

/**
 * Runs one phase call through the barrier (or, for XA actions, a prepared transaction)
 * and the business method the decorators declared.
 */
@Injectable()
export class BranchDispatcher implements OnApplicationBootstrap {
  private readonly logger = new Logger('DtxParticipant');

  constructor(
    private readonly explorer: ParticipantExplorer,
    private readonly barrier: BranchBarrier,
    private readonly prepared: PreparedTransactions,
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
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
    if (!isPhaseCall(body)) return { kind: 'invalid', message: 'not a phase call (PROTOCOL.md 5.1)' };
    const action = this.explorer.get(body.action, body.mode);
    if (!action) return { kind: 'invalid', message: `no ${body.mode} action ${body.action}` };
    const phases = MODE_PHASES[body.mode];
    if (body.phase !== phases.phase1 && body.phase !== phases.commit && body.phase !== phases.rollback) {
      return { kind: 'invalid', message: `phase ${body.phase} does not belong to mode ${body.mode}` };
    }
    const handler = action.handlers[body.phase] ?? action.handlers[phases.phase1];
    if (!handler || (!action.xa && !action.handlers[body.phase])) {
      return { kind: 'invalid', message: `action ${body.action} has no ${body.phase} method` };
    }
    const business = async (tx: unknown) =>
      handler(body.payload, { gid: body.gid, branchId: body.branchId, mode: body.mode, action: body.action, phase: body.phase, tx, manager: tx });

    let outcome: BarrierOutcome;
    if (!action.xa) outcome = await this.barrier.run(body, business);
    else if (body.phase === phases.phase1) outcome = await this.prepared.prepare(this.options.name, body, business);
    else if (body.phase === phases.commit) outcome = await this.prepared.commit(this.options.name, body);
    else outcome = await this.prepared.rollback(this.options.name, body);
    if (outcome.kind === 'failed') {
      this.logger.log(`gid=${body.gid} branchId=${body.branchId} ${body.action}/${body.phase} refused: ${outcome.message}`);
      return outcome;
    }
    if (outcome.duplicate || outcome.skipped) {
      this.logger.log(`gid=${body.gid} branchId=${body.branchId} ${body.action}/${body.phase} ${outcome.duplicate ? 'duplicate' : 'null compensation'}: skipped`);
    }
    return { kind: 'ok', result: outcome.result };
  }
}
