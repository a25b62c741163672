import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DataSource } from 'typeorm';
import type { GateSnapshot } from '../overload/participant-gate.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';

/**
 * Prometheus metrics (prom-client). Counters and histograms are fed by the engine as things
 * happen; the gauges of what is in doubt are read from Postgres at scrape time, so every
 * instance reports the same truth.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly begun = new Counter({
    name: 'dtx_transactions_begun_total',
    help: 'Global transactions begun, by mode',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });

  readonly finished = new Counter({
    name: 'dtx_transactions_finished_total',
    help: 'Global transactions that reached committed or rolled_back, by mode, status and rollback reason',
    labelNames: ['mode', 'status', 'reason'] as const,
    registers: [this.registry],
  });

  readonly calls = new Histogram({
    name: 'dtx_phase_call_duration_seconds',
    help: 'Participant calls by participant, phase and outcome (ok, failed, transient)',
    labelNames: ['participant', 'phase', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly retries = new Counter({
    name: 'dtx_phase2_retries_total',
    help: 'Phase-2 delivery rounds that left a branch unanswered and were rescheduled, by mode',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });

  readonly recoveryDeferred = new Counter({
    name: 'dtx_recovery_deferred_total',
    help: 'Transactions recovery claimed but left for later (until their lease ran out) because a participant of theirs already had a full round of calls waiting',
    registers: [this.registry],
  });

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    gates: ParticipantGates,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'dtx_' });
    this.gateGauges(gates);
    // One query per scrape serves all three gauges, whichever prom-client collects first.
    let pending: Promise<void> | null = null;
    const refresh = (): Promise<void> =>
      (pending ??= this.readGauges(inDoubt, attention, lag).finally(() => {
        pending = null;
      }));
    const inDoubt: Gauge<'status'> = new Gauge({
      name: 'dtx_transactions_in_doubt',
      help: 'Transactions not yet terminal, by status',
      labelNames: ['status'] as const,
      registers: [this.registry],
      collect: refresh,
    });
    const attention: Gauge = new Gauge({
      name: 'dtx_transactions_needing_attention',
      help: 'Transactions flagged for attention',
      registers: [this.registry],
      collect: refresh,
    });
    const lag: Gauge = new Gauge({
      name: 'dtx_recovery_lag_seconds',
      help: 'How long the most overdue transaction has been waiting for recovery (0 when none is overdue)',
      registers: [this.registry],
      collect: refresh,
    });
  }

  /** Every participant gate of this instance, read when scraped (overload/participant-gates.service.ts). */
  private gateGauges(gates: ParticipantGates): void {
    const gauge = (name: string, help: string, read: (g: GateSnapshot) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['participant'] as const,
        registers: [this.registry],
        collect(this: Gauge<'participant'>) {
          this.reset();
          for (const [participant, snapshot] of gates.snapshot()) this.set({ participant }, read(snapshot));
        },
      });
    };
    gauge('dtx_participant_in_flight', 'Calls in flight to a participant from this instance', (g) => g.inFlight);
    gauge('dtx_participant_queued', 'Calls waiting for a slot to a participant on this instance (the queue depth)', (g) => g.queued);
    gauge('dtx_participant_limit', 'A participant\'s current in-flight limit on this instance (adaptive, at most its maximum)', (g) => g.limit);
    // Counted once, where they happen (the gates); exported from there when scraped.
    new Counter({
      name: 'dtx_participant_calls_not_made_total',
      help: 'Participant calls not made, their transactions to try again later, by participant and reason: breaker_open, queue_full, queue_timeout',
      labelNames: ['participant', 'reason'] as const,
      registers: [this.registry],
      collect(this: Counter<'participant' | 'reason'>) {
        this.reset();
        for (const [participant, { refused }] of gates.snapshot()) {
          this.inc({ participant, reason: 'breaker_open' }, refused.breakerOpen);
          this.inc({ participant, reason: 'queue_full' }, refused.queueFull);
          this.inc({ participant, reason: 'queue_timeout' }, refused.queueTimeout);
        }
      },
    });
    new Counter({
      name: 'dtx_admission_total',
      help: 'Begins admitted or refused (503 OVERLOADED) by admission control on this instance',
      labelNames: ['outcome'] as const,
      registers: [this.registry],
      collect(this: Counter<'outcome'>) {
        this.reset();
        const { admitted, refused } = gates.admissionCounts();
        this.inc({ outcome: 'admitted' }, admitted);
        this.inc({ outcome: 'refused' }, refused);
      },
    });
    gauge('dtx_participant_breaker_open', 'Whether a participant\'s circuit breaker is open (1), half-open (0.5) or closed (0) on this instance', (g) =>
      g.breaker === 'open' ? 1 : g.breaker === 'half_open' ? 0.5 : 0,
    );
  }

  private async readGauges(inDoubt: Gauge<'status'>, attention: Gauge, lag: Gauge): Promise<void> {
    const rows: { status: string; n: string; attention: string; lag: string | null }[] = await this.db.query(
      `SELECT status, count(*) AS n, count(*) FILTER (WHERE needs_attention) AS attention,
              extract(epoch FROM now() - min(next_attempt_at) FILTER (WHERE next_attempt_at < now())) AS lag
       FROM global_transactions WHERE status IN ('active', 'committing', 'rolling_back') GROUP BY status`,
    );
    inDoubt.reset();
    for (const status of ['active', 'committing', 'rolling_back']) inDoubt.set({ status }, 0);
    let flagged = 0;
    let maxLag = 0;
    for (const row of rows) {
      inDoubt.set({ status: row.status }, Number(row.n));
      flagged += Number(row.attention);
      maxLag = Math.max(maxLag, Number(row.lag ?? 0));
    }
    attention.set(flagged);
    lag.set(maxLag);
  }
}
