import { Injectable, Logger } from '@nestjs/common';
import { isTerminal, type CallOutcome } from '@app/protocol';
import type { LoadedTx, TxChange } from '../transactions/transaction.store.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { BranchCaller } from './branch-caller.js';
import { crashPoint } from './crash-points.js';
import { ModeProcessors } from './processors/mode-processors.js';
import { transition, type MachineEvent, type Phase2Answer } from './state-machine.js';
import { TransactionWriter, callEvent, errorOf, machineOf } from './transaction-writer.js';

const toPhase2Answer = (outcome: CallOutcome): Phase2Answer =>
  outcome.kind === 'ok' ? 'ok' : outcome.kind === 'failed' ? 'refused' : 'transient';

type DecisionEvent = Extract<MachineEvent, { type: 'commit_requested' | 'rollback_requested' | 'deadline_passed' }>;

/**
 * The engine shared by every mode: starts one-shot transactions through their mode's
 * processor, persists decisions, delivers phase 2 until every branch has answered, and
 * resumes whatever recovery hands it.
 */
@Injectable()
export class TransactionEngine {
  private readonly logger = new Logger(TransactionEngine.name);

  constructor(
    private readonly writer: TransactionWriter,
    private readonly caller: BranchCaller,
    private readonly processors: ModeProcessors,
    private readonly metrics: MetricsService,
  ) {}

  get instanceId(): string {
    return this.writer.instanceId;
  }

  /** One-shot transactions: phase 1 (saga: the forward steps) up to a durable decision. */
  start(loaded: LoadedTx): Promise<LoadedTx> {
    return this.processors.get(loaded.tx.mode).start(loaded);
  }

  /**
   * Applies a decision (commit, rollback, deadline) with compare-and-set and takes the lease
   * for phase 2. Returns the saved transaction, or null when another writer won the race.
   */
  async decide(loaded: LoadedTx, event: DecisionEvent): Promise<LoadedTx | null> {
    const result = transition(machineOf(loaded), event);
    if (!result.ok || !result.changed) return loaded;
    const saved = await this.writer.write(loaded, {
      status: result.tx.status,
      reason: result.tx.reason,
      attempts: 0,
      ...this.writer.ownLease(),
      branches: [],
      events: [{ type: 'status', from: loaded.tx.status, to: result.tx.status, detail: { reason: result.tx.reason, cause: event.type } }],
    });
    if (saved) {
      crashPoint('after_decision', loaded.tx.gid);
      forTransaction(this.logger, loaded.tx.gid).debug(`decided: ${saved.tx.status}`, {
        status: saved.tx.status,
        reason: saved.tx.reason,
        cause: event.type,
      });
    }
    return saved;
  }

  /**
   * Delivers phase 2 in rounds (all branches at once for tcc/2pc; reverse dependency order for
   * saga compensation). Each round's answers, and the terminal status once every branch has
   * answered, are written in one commit; a round with failures schedules the next attempt with
   * capped exponential backoff and jitter. Returns null when fenced off by another instance.
   */
  async deliverPhase2(loaded: LoadedTx): Promise<LoadedTx | null> {
    let current = loaded;
    while (current.tx.status === 'committing' || current.tx.status === 'rolling_back') {
      const { tx } = current;
      const processor = this.processors.get(tx.mode);
      const phase = tx.status === 'committing' ? processor.phases.commit : processor.phases.rollback;
      if (!phase) throw new Error(`mode ${tx.mode} has no phase for ${tx.status}`);

      const wave = processor.phase2Wave(current);
      const outcomes = await this.caller.callAll(current, wave, phase, () => crashPoint('mid_phase2', tx.gid));
      crashPoint('after_phase2_calls', tx.gid);

      const answers = wave.map((b, i) => ({ branchId: b.branchId, answer: toPhase2Answer(outcomes[i]) }));
      const result = transition(machineOf(current), { type: 'phase2_answered', answers });
      if (!result.ok) throw new Error(`phase-2 answers refused: ${result.error}`);
      const next = result.tx;
      const terminal = isTerminal(next.status);
      const allOk = outcomes.every((o) => o.kind === 'ok');
      const attempts = allOk ? tx.attempts : tx.attempts + 1;
      const refused = outcomes.some((o) => o.kind === 'failed');
      const needsAttention = !terminal && (refused || attempts >= this.writer.attentionAfterAttempts);
      const statusOf = (branchId: string) => next.branches.find((b) => b.branchId === branchId)?.status;

      const events = wave.map((b, i) => callEvent(b, phase, outcomes[i], statusOf(b.branchId) ?? b.status));
      if (terminal) events.push({ type: 'status', from: tx.status, to: next.status, detail: { reason: next.reason } });
      if (needsAttention && !tx.needsAttention) events.push({ type: 'attention', detail: { attempts, refused } });
      const schedule: Pick<TxChange, 'lease' | 'nextAttemptInMs'> = terminal
        ? { lease: null, nextAttemptInMs: null }
        : allOk
          ? this.writer.ownLease() // more rounds to go right now (saga compensation order)
          : { lease: null, nextAttemptInMs: this.writer.retryDelayMs(attempts) };

      const saved = await this.writer.write(current, {
        status: next.status,
        reason: next.reason,
        attempts,
        needsAttention,
        ...schedule,
        branches: wave.map((b, i) => ({
          branchId: b.branchId,
          status: statusOf(b.branchId),
          calls: 1,
          // Why phase 1 failed (refusal, no answer) stays visible after the rollback; on a branch
          // whose phase 1 succeeded the only errors are phase-2 retries, cleared once one succeeds.
          lastError: outcomes[i].kind !== 'ok' ? errorOf(outcomes[i]) : b.status === 'failed' || b.status === 'pending' ? undefined : null,
        })),
        events,
      });
      if (!saved) {
        forTransaction(this.logger, tx.gid).warn('phase-2 result not written: another instance holds the transaction');
        return null;
      }
      current = saved;
      if (current.tx.status === 'rolling_back' && tx.mode === 'saga') crashPoint('during_compensation', tx.gid);
      if (terminal) forTransaction(this.logger, tx.gid).debug(`finished: ${next.status}`, { status: next.status, reason: next.reason });
      if (!allOk) {
        this.metrics.retries.inc({ mode: tx.mode });
        const txLogger = forTransaction(this.logger, tx.gid);
        // One line per branch still owed its phase 2, so each can be followed by its branchId.
        wave.forEach((branch, i) => {
          const outcome = outcomes[i];
          if (outcome.kind === 'ok') return;
          txLogger.branch(branch.branchId).warn(`phase 2 (${phase}) incomplete after attempt ${attempts}; retrying later`, {
            phase,
            attempts,
            outcome: outcome.kind,
          });
        });
        break;
      }
    }
    return current;
  }

  /** Phase 2 in the background, after the decision was answered to the client. */
  deliverInBackground(loaded: LoadedTx): void {
    this.deliverPhase2(loaded).catch((error: unknown) =>
      forTransaction(this.logger, loaded.tx.gid).error(`phase-2 delivery failed: ${String(error)}; recovery will resume it`),
    );
  }

  /** What recovery does with a transaction it claimed. */
  async resume(loaded: LoadedTx): Promise<void> {
    let current: LoadedTx | null = loaded;
    if (loaded.tx.status === 'active') {
      const processor = this.processors.get(loaded.tx.mode);
      // tcc/2pc rows fall due at their deadline; a saga also between retries of its steps.
      const expired = loaded.tx.mode !== 'saga' || loaded.tx.deadline.getTime() <= Date.now();
      current = expired ? await this.decide(loaded, { type: 'deadline_passed' }) : await processor.resumeActive(loaded);
      if (expired && current) forTransaction(this.logger, loaded.tx.gid).log('timed out: rolling back');
    }
    if (current) await this.deliverPhase2(current);
  }
}
