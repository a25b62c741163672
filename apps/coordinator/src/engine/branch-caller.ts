import { performance } from 'node:perf_hooks';
import { Injectable, Logger } from '@nestjs/common';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { MetricsService, sampledSpanIds } from '../metrics/metrics.service.js';
import type { CallOutcome, Json, Mode, Phase } from '@nest-dtx/protocol';
import { ParticipantInvoker } from '../invoker/participant-invoker.service.js';
import { debugLogged } from '../logging/json-logger.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { ParticipantsService } from '../participants/participants.service.js';
import type { GateRefusal } from '../overload/participant-gate.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import { DatabaseTime } from '../store/database-clock.js';
import type { BranchRecord, LoadedTx } from '../store/records.js';
import { endCall, inCall, startCall } from '../telemetry/tracing.js';
import { storableOutcome } from './storable-answer.js';

/** This instance no longer holds the lease of a transaction it was driving (it was paused, or slow). */
export class LeaseLostError extends Error {
  constructor(readonly gid: string) {
    super(`transaction ${gid}: lease expired or not held; leaving the transaction to whoever claims it next`);
    this.name = 'LeaseLostError';
  }
}

/**
 * What one call goes to: a branch, msg's check-back (which names the caller's action, not a
 * branch), a local step's compensation, or a workflow's resume (whose payload is the workflow's
 * input, any JSON).
 */
export type CallTarget = Pick<BranchRecord, 'branchId' | 'participant' | 'action'> & { readonly payload: Json };

/** One call of a round: its target, its phase, and the mode its body names when that is not the transaction's (a workflow's step: its kind's). */
export interface PhaseCall {
  readonly target: CallTarget;
  readonly phase: Phase;
  readonly mode?: Mode;
  /** Which call to this target it is, from 1, every phase counted (the history's `attempt`; its span's `dtx.attempt`). */
  readonly attempt?: number;
}

/** How the error of every call the gate held back begins. */
const NOT_CALLED = 'not called: ';

/** Whether an outcome is a call the participant's gate held back (no call was made). */
export const wasNotCalled = (outcome: CallOutcome): boolean => outcome.kind === 'transient' && typeof outcome.error === 'string' && outcome.error.startsWith(NOT_CALLED);

/** Why a call was not made, in the words the branch's lastError and the log show. */
function notCalled(participant: string, refusal: GateRefusal): string {
  return NOT_CALLED + notCalledReason(participant, refusal);
}

function notCalledReason(participant: string, refusal: GateRefusal): string {
  switch (refusal.kind) {
    case 'breaker_open':
      return `participant ${participant}'s circuit breaker is open after transient failures in a row; next probe in ${refusal.retryInMs} ms`;
    case 'queue_full':
      return `${refusal.queued} calls already waiting for participant ${participant} on this instance`;
    case 'queue_timeout':
      return `waited ${refusal.waitedMs} ms for a free slot to participant ${participant}, too long to make the call in time`;
  }
}

/** Calls one phase of one branch on its registered participant. */
@Injectable()
export class BranchCaller {
  private readonly logger = new Logger(BranchCaller.name);

  constructor(
    private readonly participants: ParticipantsService,
    private readonly invoker: ParticipantInvoker,
    private readonly config: CoordinatorConfig,
    private readonly metrics: MetricsService,
    private readonly gates: ParticipantGates,
    private readonly clock: DatabaseTime,
  ) {}

  /**
   * An unregistered participant is a transient failure: it may register later. The call goes
   * through the participant's gate (overload/participant-gate.ts): it waits for a slot, and the
   * wait is taken from its CALL_TIMEOUT_MS; a phase-1 call of an active transaction waits no
   * later than the transaction's deadline. A call the gate does not let through (breaker open,
   * queue full, budget spent waiting) is not made: a transient outcome, tried again later.
   */
  async call(loaded: Pick<LoadedTx, 'tx' | 'heldUntil'>, branch: CallTarget, phase: Phase, mode: Mode = loaded.tx.mode, attempt = 1): Promise<CallOutcome> {
    const participant = await this.participants.find(branch.participant);
    if (!participant) return { kind: 'transient', error: `participant ${branch.participant} is not registered` };
    const { tx } = loaded;
    const maxWaitMs = tx.status === 'active' && phase !== 'check' ? Math.max(0, this.clock.msUntil(tx.deadline)) : Number.POSITIVE_INFINITY;
    // A call under a lease must be over (sent, or given up) before the lease ends. callAll checked
    // that a whole call's time was left, but a pause since (GC, SIGSTOP, a stalled VM) at any
    // await above would otherwise still get a whole CALL_TIMEOUT_MS from here: the budget is
    // what is left of the lease, on the monotonic clock.
    const leaseLeftMs = loaded.heldUntil === undefined ? Number.POSITIVE_INFINITY : loaded.heldUntil - performance.now();
    if (leaseLeftMs <= 0) throw new LeaseLostError(tx.gid);
    const budgetMs = Math.min(this.config.env.CALL_TIMEOUT_MS, leaseLeftMs);
    const admission = await this.gates.gate(participant.name, participant.maxInFlight).enter(budgetMs, maxWaitMs);
    if (admission.kind !== 'permit') return { kind: 'transient', error: notCalled(participant.name, admission) };
    const startedAt = performance.now();
    const leaseVersion = loaded.heldUntil === undefined ? undefined : tx.version;
    const traced = startCall({
      tx,
      branchId: branch.branchId,
      participant: participant.name,
      action: branch.action,
      phase,
      mode,
      attempt,
      transport: participant.transport,
      publish: participant.publish,
    });
    let answer: CallOutcome;
    try {
      answer = await this.invoker.call(
        participant,
        { gid: tx.gid, branchId: branch.branchId, mode, action: branch.action, phase, payload: branch.payload },
        admission.timeoutMs,
        leaseVersion,
        traced.headers,
      );
    } catch (error) {
      admission.release('transient', performance.now() - startedAt);
      endCall(traced, { kind: 'transient', error: String(error) });
      throw error;
    }
    const tookMs = performance.now() - startedAt;
    // A 202 (ongoing) is a participant answering in health: for its breaker it is a success.
    admission.release(answer.kind === 'ongoing' ? 'ok' : answer.kind, tookMs);
    // Whatever the participant sent, what enters the engine can be recorded (storable-answer.ts).
    const outcome = storableOutcome(answer);
    // The call's own span (when sampled) is the latency's exemplar: a slow bucket leads to this call.
    this.metrics.observeCall({ participant: branch.participant, phase, outcome: outcome.kind }, tookMs / 1000, ...inCall(traced, sampledSpanIds));
    endCall(traced, outcome, admission.waitedMs > 0 ? { 'dtx.queued_ms': Math.round(admission.waitedMs) } : undefined);
    // Debug only: one line per participant call would cost throughput at the default level, so below it nothing is built.
    if (debugLogged()) inCall(traced, () => {
      forTransaction(this.logger, tx.gid, branch.branchId).debug(`${branch.participant} ${branch.action}/${phase}: ${outcome.kind}`, {
        participant: branch.participant,
        phase,
        outcome: outcome.kind,
        durationMs: Math.round(performance.now() - startedAt),
        queuedMs: admission.waitedMs,
        error: outcome.kind === 'ok' || outcome.kind === 'ongoing' ? undefined : typeof outcome.error === 'string' ? outcome.error : JSON.stringify(outcome.error),
      });
    });
    return outcome;
  }

  /**
   * Calls a round of a transaction this instance drives, each call in its own phase (the
   * branches of one round may be of different kinds). Only while it holds the lease, with
   * time left for the calls to finish: an instance that was paused past its lease sends
   * nothing, so two instances never call for one transaction in overlapping leases.
   */
  callAll(loaded: LoadedTx, calls: readonly PhaseCall[], onFirstAnswer?: () => void): Promise<CallOutcome[]> {
    if (loaded.heldUntil === undefined || performance.now() + this.config.env.CALL_TIMEOUT_MS > loaded.heldUntil) {
      return Promise.reject(new LeaseLostError(loaded.tx.gid));
    }
    let answered = 0;
    return Promise.all(
      calls.map(async ({ target, phase, mode, attempt }) => {
        const outcome = await this.call(loaded, target, phase, mode, attempt);
        if (answered++ === 0) onFirstAnswer?.();
        return outcome;
      }),
    );
  }
}
