import { Injectable } from '@nestjs/common';
import { isTerminal, type CallOutcome, type Json, type Phase } from '@app/protocol';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { TransactionStore, type BranchRecord, type EventInput, type LoadedTx, type TxChange } from '../transactions/transaction.store.js';
import { backoffDelayMs } from './backoff.js';
import type { MachineTx } from './state-machine.js';

export const machineOf = (loaded: LoadedTx): MachineTx => ({
  mode: loaded.tx.mode,
  status: loaded.tx.status,
  reason: loaded.tx.reason,
  branches: loaded.branches.map((b) => ({ branchId: b.branchId, status: b.status })),
});

export const errorOf = (outcome: CallOutcome): Json => (outcome.kind === 'ok' ? null : outcome.error);

/** The history event of one participant call. */
export function callEvent(branch: BranchRecord, phase: Phase, outcome: CallOutcome, to: string): EventInput {
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
 * Writes engine decisions: the compare-and-set through the store, the state-change
 * notification on the bus, and the in-memory merge. Shared by every processor.
 */
@Injectable()
export class TransactionWriter {
  constructor(
    private readonly store: TransactionStore,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
    private readonly metrics: MetricsService,
  ) {}

  get instanceId(): string {
    return this.config.instanceId;
  }

  /** A lease for this instance, long enough to finish what it is doing. */
  ownLease(): Pick<TxChange, 'lease' | 'nextAttemptInMs'> {
    return { lease: { owner: this.instanceId, ms: this.config.env.LEASE_MS }, nextAttemptInMs: this.config.env.LEASE_MS };
  }

  retryDelayMs(attempt: number): number {
    return backoffDelayMs({ baseMs: this.config.env.RETRY_BASE_MS, capMs: this.config.env.RETRY_MAX_MS }, attempt);
  }

  get attentionAfterAttempts(): number {
    return this.config.env.ATTENTION_AFTER_ATTEMPTS;
  }

  /** Applies `change` if nobody else moved the transaction; null when fenced off. */
  async write(loaded: LoadedTx, change: TxChange): Promise<LoadedTx | null> {
    const startedAt = Date.now();
    const saved = await this.store.apply(loaded.tx.gid, loaded.tx.version, change);
    if (!saved) return null;
    if (saved.tx.status !== loaded.tx.status || isTerminal(saved.tx.status)) {
      this.bus.publish({ kind: 'tx', gid: saved.tx.gid, status: saved.tx.status });
    }
    if (isTerminal(saved.tx.status) && !isTerminal(loaded.tx.status)) {
      this.metrics.finished.inc({ mode: saved.tx.mode, status: saved.tx.status, reason: saved.tx.reason ?? '' });
    }
    const changed = new Map(saved.branches.map((b) => [b.branchId, b]));
    const held = change.lease?.owner === this.instanceId ? { heldUntil: startedAt + change.lease.ms } : {};
    return { tx: saved.tx, branches: loaded.branches.map((b) => changed.get(b.branchId) ?? b), ...held };
  }

  reload(gid: string): Promise<LoadedTx | null> {
    return this.store.load(gid);
  }
}
