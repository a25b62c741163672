import { Inject, Injectable, Optional } from '@nestjs/common';
import { ID_PATTERN, type Json, type PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome, BarrierRunOptions } from '../data-layers/core/barrier-rules.js';
import { BusinessFailure } from '../data-layers/core/business-failure.js';
import type { BusinessWork, DtxDataLayer } from '../data-layers/core/data-layer.js';
import { isOngoingAnswer } from '../data-layers/core/ongoing-answer.js';
import { DtxInbox, type DtxInboxOptions } from '../messages/dtx-inbox.js';
import { DTX_DATA_LAYER } from './data-layer.provider.js';
import { checkCall, LocalTransactionRefused, localTransactionCall } from './msg-check.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';
import { SigningKeys } from './signing-keys.js';

export type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';

/** What a message's local transaction came to (BranchBarrier.runLocal). */
export interface LocalTransactionOutcome {
  /** It had already committed for this gid (a retried send): the work did not run again; `result` is the first one's. */
  duplicate: boolean;
  result: Json;
}

/** The answer of msg's check rule, asked of the local barrier. */
export type LocalCommitState = 'committed' | 'not_committed';

/** What MsgBuilder.doAndSubmit needs of the caller's barrier: BranchBarrier has it. */
export interface LocalTransactionBarrier<Tx> {
  /** The participant whose barrier this is: the message's check target. */
  readonly participant: string;
  runLocal(gid: string, work: (tx: Tx) => Promise<Json | void>): Promise<LocalTransactionOutcome>;
  checkLocal(gid: string): Promise<LocalCommitState>;
}

/** Why a message's local transaction may not answer ongoing(). */
const LOCAL_ONGOING_REFUSED = "BranchBarrier.runLocal: a message's local transaction commits or fails in the call: it cannot answer ongoing()";

function checkedGid(gid: string): string {
  if (typeof gid !== 'string' || !ID_PATTERN.test(gid)) throw new TypeError(`not a gid: ${JSON.stringify(gid)} (PROTOCOL.md 3.1: [A-Za-z0-9_.:-]{1,128})`);
  return gid;
}

/**
 * The branch barrier (PROTOCOL.md 5.4) on the participant's data layer: every phase runs in one
 * local transaction with its barrier rows, so that it takes effect once (idempotency), a
 * rollback before its phase 1 changes nothing (null compensation) and a phase 1 after its
 * rollback refuses (anti-hanging). The rules are in data-layers/core/barrier-rules.ts.
 *
 * It also runs the local transaction of a two-phase message this participant sends (runLocal),
 * and answers the message's check-back from the same row (checkLocal, and the built-in action
 * `dtx-msg-check`).
 */
@Injectable()
export class BranchBarrier<Tx = unknown> implements LocalTransactionBarrier<Tx> {
  constructor(
    @Inject(DTX_DATA_LAYER) private readonly dataLayer: DtxDataLayer<Tx>,
    // Optional for a barrier made by hand around a data layer (tests, scripts): it then has no
    // participant name, which only the message methods need.
    @Optional() @Inject(PARTICIPANT_OPTIONS) private readonly options?: Pick<ParticipantModuleOptions, 'name'>,
    @Optional() private readonly keys?: SigningKeys,
  ) {}

  /** The data layer, for messages. */
  get description(): string {
    return this.dataLayer.description;
  }

  /** This participant's name (from the module's options): the check target of the messages it sends. */
  get participant(): string {
    if (!this.options?.name) throw new Error('this BranchBarrier has no participant name: use the one DtxParticipantModule provides');
    return this.options.name;
  }

  /** One phase call through the barrier; `options.kind` `undo` for a compensation with no phase 1 by design (LocalStepCompensation). */
  run(call: PhaseCallBody, business: BusinessWork<Tx>, options?: BarrierRunOptions): Promise<BarrierOutcome> {
    return options ? this.dataLayer.runPhase(call, business, options) : this.dataLayer.runPhase(call, business);
  }

  /**
   * Runs the local transaction of message `gid` (begun active, its check target this
   * participant's `dtx-msg-check`): `work` in one transaction of the data layer together with
   * the phase-1 barrier row of the message's `check` branch, which is what the check-back
   * (checkLocal, or the coordinator's call to `dtx-msg-check`) looks for.
   *
   * The race this closes: the coordinator checks back at the message's deadline, maybe while
   * this transaction is still running. Whichever writes the row first wins, atomically: a local
   * transaction that inserted it first either commits (the check, waiting on the row on a SQL
   * store, then finds it and answers 2xx) or rolls back (the check then takes the slot: 409); a
   * check that took the slot first leaves its marker, and this transaction finds it and is
   * refused (LocalTransactionRefused) without running `work`. So the coordinator never rolls
   * back a message whose local transaction commits after all, nor delivers one whose did not.
   *
   * Throws the work's BusinessFailure (nothing committed), LocalTransactionRefused, or any other
   * error as it came (then the outcome of the commit may be unknown: ask checkLocal).
   */
  async runLocal(gid: string, work: (tx: Tx) => Promise<Json | void>): Promise<LocalTransactionOutcome> {
    const call = localTransactionCall(checkedGid(gid));
    const thrown: { failure?: BusinessFailure } = {};
    const outcome = await this.dataLayer.runPhase(call, async (tx) => {
      let answer: unknown;
      try {
        answer = await work(tx);
      } catch (error) {
        if (error instanceof BusinessFailure) thrown.failure = error;
        throw error;
      }
      // The caller's own local transaction commits now or never: there is no call to repeat.
      // Thrown inside it, so that nothing it wrote commits.
      if (isOngoingAnswer(answer)) throw new TypeError(LOCAL_ONGOING_REFUSED);
      return answer as Json | void;
    });
    if (outcome.kind === 'ok') return { duplicate: outcome.duplicate, result: outcome.result };
    if (outcome.kind === 'ongoing') throw new TypeError(LOCAL_ONGOING_REFUSED);
    // The work's own refusal, answered as it was thrown. (On Redis the barrier's refusal can come
    // after the work's BusinessFailure, when a check took the slot meanwhile: that one holds.)
    const refused = thrown.failure;
    if (refused && outcome.message === refused.message && outcome.details === refused.details) throw refused;
    throw new LocalTransactionRefused(
      gid,
      `the local transaction of message ${gid} is refused: a check-back already answered that it did not commit`,
      outcome.details,
    );
  }

  /**
   * Asks this participant's barrier what the coordinator's check-back would: did the local
   * transaction of message `gid` commit? Not committed makes it final: the answer takes the row's
   * slot, so a local transaction of that gid still open or still to come can no longer commit.
   * A local transaction still open holds the row, and on a SQL store this waits for it to end
   * (up to the data layer's lock timeout, then throws).
   */
  async checkLocal(gid: string): Promise<LocalCommitState> {
    const outcome = await this.dataLayer.runPhase(checkCall(checkedGid(gid)), () => Promise.resolve(null));
    return outcome.kind === 'ok' ? 'committed' : 'not_committed';
  }

  /**
   * A DtxInbox on this participant's data layer, for messages a broker delivers. Without a
   * `signingSecret` it verifies with this participant's own signing key (what the coordinator
   * gave it at registration): right when this participant is itself the publish target.
   */
  inbox(options: Partial<DtxInboxOptions> = {}): DtxInbox<Tx> {
    const keys = this.keys;
    const signingSecret = options.signingSecret ?? (keys ? () => keys.current() : undefined);
    if (!signingSecret) throw new Error('BranchBarrier.inbox: give a signingSecret (this barrier has no signing key of its own)');
    return new DtxInbox(this.dataLayer, { ...options, signingSecret });
  }
}
