import { Injectable, Logger } from '@nestjs/common';
import { isTerminal, type CallOutcome, type Json, type Phase } from '@app/protocol';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { ParticipantInvoker } from '../invoker/participant-invoker.service.js';
import { ParticipantsService } from '../participants/participants.service.js';
import {
  TransactionStore,
  type BranchChange,
  type BranchRecord,
  type EventInput,
  type LoadedTx,
  type TxChange,
} from '../transactions/transaction.store.js';
import { backoffDelayMs } from './backoff.js';
import { crashPoint } from './crash-points.js';
import { ModeProcessors } from './mode-processor.js';
import {
  branchesAwaitingPhase2,
  transition,
  type MachineEvent,
  type MachineTx,
  type Phase1Answer,
  type Phase2Answer,
} from './state-machine.js';

export const machineOf = (loaded: LoadedTx): MachineTx => ({
  mode: loaded.tx.mode,
  status: loaded.tx.status,
  reason: loaded.tx.reason,
  branches: loaded.branches.map((b) => ({ branchId: b.branchId, status: b.status })),
});

/** Replaces the rows a write returned in what we hold in memory. */
export function mergeSaved(loaded: LoadedTx, saved: { tx: LoadedTx['tx']; branches: BranchRecord[] }): LoadedTx {
  const changed = new Map(saved.branches.map((b) => [b.branchId, b]));
  return { tx: saved.tx, branches: loaded.branches.map((b) => changed.get(b.branchId) ?? b) };
}

const errorOf = (outcome: CallOutcome): Json =>
  outcome.kind === 'failed' ? outcome.error : outcome.kind === 'transient' ? outcome.error : null;

function callEvent(branch: BranchRecord, phase: Phase, outcome: CallOutcome, to: string): EventInput {
  return {
    type: 'call',
    branchId: branch.branchId,
    from: branch.status,
    to,
    detail: {
      participant: branch.participant,
      action: branch.action,
      phase,
      outcome: outcome.kind,
      attempt: branch.attempts + 1,
      ...(outcome.kind === 'ok' ? {} : { error: errorOf(outcome) }),
    },
  };
}

/**
 * The engine shared by every mode: runs phase 1 of one-shot transactions, persists decisions,
 * and delivers phase 2 until every branch has answered. Used by the API and by recovery.
 */
@Injectable()
export class TransactionEngine {
  private readonly logger = new Logger(TransactionEngine.name);

  constructor(
    private readonly store: TransactionStore,
    private readonly participants: ParticipantsService,
    private readonly invoker: ParticipantInvoker,
    private readonly processors: ModeProcessors,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
  ) {}

  get instanceId(): string {
    return this.config.instanceId;
  }

  /** Calls one phase of one branch; an unregistered participant is a transient failure. */
  async callBranch(loaded: LoadedTx, branch: BranchRecord, phase: Phase): Promise<CallOutcome> {
    const participant = await this.participants.find(branch.participant);
    if (!participant) return { kind: 'transient', error: `participant ${branch.participant} is not registered` };
    return this.invoker.call(participant, {
      gid: loaded.tx.gid,
      branchId: branch.branchId,
      mode: loaded.tx.mode,
      action: branch.action,
      phase,
      payload: branch.payload,
    });
  }

  /**
   * Applies a decision event (commit, rollback, deadline) with compare-and-set and takes the
   * lease for phase 2. Returns the saved transaction, or null when another writer won the race.
   */
  async decide(loaded: LoadedTx, event: MachineEvent & { type: 'commit_requested' | 'rollback_requested' | 'deadline_passed' }): Promise<LoadedTx | null> {
    const result = transition(machineOf(loaded), event);
    if (!result.ok || !result.changed) return loaded;
    const saved = await this.store.apply(loaded.tx.gid, loaded.tx.version, {
      status: result.tx.status,
      reason: result.tx.reason,
      nextAttemptInMs: this.config.env.LEASE_MS,
      lease: { owner: this.instanceId, ms: this.config.env.LEASE_MS },
      branches: [],
      events: [{ type: 'status', from: loaded.tx.status, to: result.tx.status, detail: { reason: result.tx.reason, cause: event.type } }],
    });
    if (!saved) return null;
    this.bus.publish({ kind: 'tx', gid: loaded.tx.gid, status: saved.tx.status });
    crashPoint('after_decision', loaded.tx.gid);
    return mergeSaved(loaded, saved);
  }

  /**
   * One-shot tcc/2pc: phase 1 on every branch in parallel, then the decision, written in one
   * commit with every answer. Returns the decided transaction, or the current one when another
   * instance moved it meanwhile (for example a timeout).
   */
  async runOneShot(loaded: LoadedTx): Promise<LoadedTx> {
    const processor = this.processors.get(loaded.tx.mode);
    const phase = processor.phases.phase1;
    const outcomes = await Promise.all(loaded.branches.map((b) => this.callBranch(loaded, b, phase)));
    crashPoint('after_phase1_calls', loaded.tx.gid);

    const answers = loaded.branches.map((b, i) => ({ branchId: b.branchId, answer: toPhase1Answer(outcomes[i]) }));
    const answered = transition(machineOf(loaded), { type: 'phase1_answered', answers });
    const decided = answered.ok ? transition(answered.tx, { type: 'phase1_finished' }) : answered;
    if (!decided.ok) throw new Error(`one-shot decision refused: ${decided.error}`);

    const next = decided.tx;
    const statusOf = (branchId: string) => next.branches.find((b) => b.branchId === branchId)?.status;
    const branches: BranchChange[] = loaded.branches.map((b, i) => {
      const outcome = outcomes[i];
      return outcome.kind === 'ok'
        ? { branchId: b.branchId, status: statusOf(b.branchId), calls: 1, result: outcome.result }
        : { branchId: b.branchId, status: statusOf(b.branchId), calls: 1, lastError: errorOf(outcome) };
    });
    const events: EventInput[] = loaded.branches.map((b, i) => callEvent(b, phase, outcomes[i], statusOf(b.branchId) ?? b.status));
    events.push({ type: 'status', from: loaded.tx.status, to: next.status, detail: { reason: next.reason, cause: 'phase1_finished' } });

    const saved = await this.store.apply(loaded.tx.gid, loaded.tx.version, {
      status: next.status,
      reason: next.reason,
      nextAttemptInMs: this.config.env.LEASE_MS,
      lease: { owner: this.instanceId, ms: this.config.env.LEASE_MS },
      branches,
      events,
    });
    if (!saved) return (await this.store.load(loaded.tx.gid)) ?? loaded;
    this.bus.publish({ kind: 'tx', gid: loaded.tx.gid, status: saved.tx.status });
    crashPoint('after_decision', loaded.tx.gid);
    return mergeSaved(loaded, saved);
  }

  /**
   * Delivers phase 2 once to every branch still waiting for it, and writes the answers, the
   * terminal status when all succeeded, or the next attempt time (capped exponential backoff
   * with jitter) in one commit. Returns null when fenced off by another instance.
   */
  async deliverPhase2(loaded: LoadedTx): Promise<LoadedTx | null> {
    const { tx } = loaded;
    if (tx.status !== 'committing' && tx.status !== 'rolling_back') return loaded;
    const processor = this.processors.get(tx.mode);
    const phase = tx.status === 'committing' ? processor.phases.commit : processor.phases.rollback;
    if (!phase) throw new Error(`mode ${tx.mode} has no phase for ${tx.status}`);

    const waiting = new Set(branchesAwaitingPhase2(machineOf(loaded)).map((b) => b.branchId));
    const due = loaded.branches.filter((b) => waiting.has(b.branchId));
    const outcomes = await Promise.all(due.map((b) => this.callBranch(loaded, b, phase)));
    crashPoint('after_phase2_calls', tx.gid);

    const answers = due.map((b, i) => ({ branchId: b.branchId, answer: toPhase2Answer(outcomes[i]) }));
    const result = transition(machineOf(loaded), { type: 'phase2_answered', answers });
    if (!result.ok) throw new Error(`phase-2 answers refused: ${result.error}`);
    const next = result.tx;
    const terminal = isTerminal(next.status);
    const attempts = tx.attempts + 1;
    const refused = outcomes.some((o) => o.kind === 'failed');
    const needsAttention = !terminal && (refused || attempts >= this.config.env.ATTENTION_AFTER_ATTEMPTS);
    const statusOf = (branchId: string) => next.branches.find((b) => b.branchId === branchId)?.status;

    const events = due.map((b, i) => callEvent(b, phase, outcomes[i], statusOf(b.branchId) ?? b.status));
    if (terminal) events.push({ type: 'status', from: tx.status, to: next.status, detail: { reason: next.reason } });
    if (needsAttention && !tx.needsAttention) {
      events.push({ type: 'attention', detail: { attempts, refused } });
    }
    const change: TxChange = {
      status: next.status,
      reason: next.reason,
      attempts,
      needsAttention,
      nextAttemptInMs: terminal
        ? null
        : backoffDelayMs({ baseMs: this.config.env.RETRY_BASE_MS, capMs: this.config.env.RETRY_MAX_MS }, attempts),
      lease: null,
      branches: due.map((b, i) => ({
        branchId: b.branchId,
        status: statusOf(b.branchId),
        calls: 1,
        // Why phase 1 failed (refusal, no answer) stays visible after the rollback; on a branch
        // whose phase 1 succeeded, the only errors are phase-2 retries, cleared once one succeeds.
        lastError: outcomes[i].kind !== 'ok' ? errorOf(outcomes[i]) : b.status === 'prepared' ? null : undefined,
      })),
      events,
    };
    const saved = await this.store.apply(tx.gid, tx.version, change);
    if (!saved) {
      this.logger.warn(`gid=${tx.gid} phase-2 result not written: another instance holds the transaction`);
      return null;
    }
    if (terminal) this.bus.publish({ kind: 'tx', gid: tx.gid, status: next.status });
    else this.logger.warn(`gid=${tx.gid} phase 2 (${phase}) incomplete after attempt ${attempts}; retrying later`);
    return mergeSaved(loaded, saved);
  }

  /** Phase 2 in the background, after the decision was answered to the client. */
  deliverInBackground(loaded: LoadedTx): void {
    this.deliverPhase2(loaded).catch((error: unknown) =>
      this.logger.error(`gid=${loaded.tx.gid} phase-2 delivery failed: ${String(error)}; recovery will resume it`),
    );
  }
}

function toPhase1Answer(outcome: CallOutcome): Phase1Answer {
  return outcome.kind === 'ok' ? 'ok' : outcome.kind === 'failed' ? 'failed' : 'unknown';
}

function toPhase2Answer(outcome: CallOutcome): Phase2Answer {
  return outcome.kind === 'ok' ? 'ok' : outcome.kind === 'failed' ? 'refused' : 'transient';
}
