import { Injectable, Logger } from '@nestjs/common';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { CallOutcome, Phase } from '@nest-dtx/protocol';
import { ParticipantInvoker } from '../invoker/participant-invoker.service.js';
import { debugLogged } from '../logging/json-logger.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { ParticipantsService } from '../participants/participants.service.js';
import type { BranchRecord, LoadedTx } from '../store/records.js';
import { storableOutcome } from './storable-answer.js';

/** This instance no longer holds the lease of a transaction it was driving (it was paused, or slow). */
export class LeaseLostError extends Error {
  constructor(readonly gid: string) {
    super(`transaction ${gid}: lease expired or not held; leaving the transaction to whoever claims it next`);
    this.name = 'LeaseLostError';
  }
}

/** What one call goes to: a branch, or msg's check-back (which names the caller's action, not a branch). */
export type CallTarget = Pick<BranchRecord, 'branchId' | 'participant' | 'action' | 'payload'>;

/** Calls one phase of one branch on its registered participant. */
@Injectable()
export class BranchCaller {
  private readonly logger = new Logger(BranchCaller.name);

  constructor(
    private readonly participants: ParticipantsService,
    private readonly invoker: ParticipantInvoker,
    private readonly config: CoordinatorConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** An unregistered participant is a transient failure: it may register later. */
  async call(loaded: Pick<LoadedTx, 'tx' | 'heldUntil'>, branch: CallTarget, phase: Phase): Promise<CallOutcome> {
    const participant = await this.participants.find(branch.participant);
    if (!participant) return { kind: 'transient', error: `participant ${branch.participant} is not registered` };
    const startedAt = Date.now();
    const stopTimer = this.metrics.calls.startTimer({ participant: branch.participant, phase });
    const leaseVersion = loaded.heldUntil === undefined ? undefined : loaded.tx.version;
    const answer = await this.invoker.call(participant, {
      gid: loaded.tx.gid,
      branchId: branch.branchId,
      mode: loaded.tx.mode,
      action: branch.action,
      phase,
      payload: branch.payload,
    }, leaseVersion, loaded.tx.traceParent ?? undefined);
    // Whatever the participant sent, what enters the engine can be recorded (storable-answer.ts).
    const outcome = storableOutcome(answer);
    stopTimer({ outcome: outcome.kind });
    // Debug only: one line per participant call would cost throughput at the default level, so below it nothing is built.
    if (debugLogged()) {
      forTransaction(this.logger, loaded.tx.gid, branch.branchId).debug(`${branch.participant} ${branch.action}/${phase}: ${outcome.kind}`, {
        participant: branch.participant,
        phase,
        outcome: outcome.kind,
        durationMs: Date.now() - startedAt,
        error: outcome.kind === 'ok' ? undefined : typeof outcome.error === 'string' ? outcome.error : JSON.stringify(outcome.error),
      });
    }
    return outcome;
  }

  /**
   * Calls a round of a transaction this instance drives. Only while it holds the lease, with
   * time left for the calls to finish: an instance that was paused past its lease sends
   * nothing, so two instances never call for one transaction in overlapping leases.
   */
  callAll(loaded: LoadedTx, branches: readonly CallTarget[], phase: Phase, onFirstAnswer?: () => void): Promise<CallOutcome[]> {
    if (loaded.heldUntil === undefined || Date.now() + this.config.env.CALL_TIMEOUT_MS > loaded.heldUntil) {
      return Promise.reject(new LeaseLostError(loaded.tx.gid));
    }
    let answered = 0;
    return Promise.all(
      branches.map(async (b) => {
        const outcome = await this.call(loaded, b, phase);
        if (answered++ === 0) onFirstAnswer?.();
        return outcome;
      }),
    );
  }
}
