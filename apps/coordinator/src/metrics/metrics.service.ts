import { Injectable } from '@nestjs/common';
import { TraceFlags } from '@opentelemetry/api';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues, type Metric, type OpenMetricsContentType } from 'prom-client';
import { DataSource } from 'typeorm';
import type { GateSnapshot } from '../overload/participant-gate.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import { activeSpanContext } from '../telemetry/tracing.js';

type CallLabels = LabelValues<'participant' | 'phase' | 'outcome'>;

/** A call without a sampled span: prom-client skips the exemplar for an empty label set. */
const NO_EXEMPLAR: LabelValues<string> = Object.freeze({});

/** What prom-client's registry holds of a metric, as read here (its typings stop at MetricObject). */
interface RegisteredMetric {
  name: string;
  help: string;
  type: string;
  get(): Promise<{ name: string }>;
}

/**
 * Registers a metric with exemplars in a registry of the Prometheus format. prom-client refuses
 * that in the metric's constructor, lest the exemplars be silently left out: here the registry
 * is rendered in the Prometheus format (which has no exemplars, so none are shown, the rest
 * unchanged) and, for a scraper that asks, in OpenMetrics (scrape), which shows them.
 */
function registerWithExemplars<T extends Histogram<string>>(registry: Registry, metric: T): T {
  registry.registerMetric(metric);
  return metric;
}

const NO_SPAN: [] = [];

/**
 * The trace and span ids of the active span when it is sampled, for observeCall's exemplar;
 * none otherwise. Only a sampled span is exported, so only its ids lead to a trace. With tracing
 * off this returns at once (telemetry/tracing.ts).
 */
export function sampledSpanIds(): [traceId: string, spanId: string] | [] {
  const span = activeSpanContext();
  if (!span || (span.traceFlags & TraceFlags.SAMPLED) === 0) return NO_SPAN;
  return [span.traceId, span.spanId];
}

/**
 * Whether a scraper's Accept header asks for OpenMetrics rather than the Prometheus text format:
 * it names `application/openmetrics-text` with a weight above 0 and at least that of `text/plain`.
 * Prometheus asks for OpenMetrics first; curl and browsers send nothing of the kind.
 */
export function prefersOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  let openMetrics = 0;
  let plain = 0;
  for (const range of accept.split(',')) {
    const [type, ...parameters] = range.split(';').map((part) => part.trim().toLowerCase());
    const q = parameters.find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    if (!Number.isFinite(weight)) continue;
    if (type === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, weight);
    else if (type === 'text/plain') plain = Math.max(plain, weight);
  }
  return openMetrics > 0 && openMetrics >= plain;
}

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

  /**
   * With exemplars: each bucket keeps the trace of the last call that fell in it, which the
   * OpenMetrics format shows (scrape). Record through observeCall: with exemplars on,
   * prom-client's observe takes one object.
   */
  readonly calls = registerWithExemplars(
    this.registry,
    new Histogram({
      name: 'dtx_phase_call_duration_seconds',
      help: 'Participant calls by participant, phase and outcome (ok, failed, transient)',
      labelNames: ['participant', 'phase', 'outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      enableExemplars: true,
      registers: [],
    }),
  );

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

  /**
   * One participant call's duration. With the ids of a sampled span the call's bucket keeps
   * them as its exemplar (`trace_id`, `span_id`, OpenMetrics' and Grafana's names), linking the
   * latency panel to the trace; without, nothing more than the observation is done.
   */
  observeCall(labels: CallLabels, seconds: number, traceId?: string, spanId?: string): void {
    this.calls.observe({ labels, value: seconds, exemplarLabels: traceId && spanId ? { trace_id: traceId, span_id: spanId } : NO_EXEMPLAR });
  }

  /**
   * The registry in the format the scraper asked for: OpenMetrics, with the exemplars, when its
   * Accept names `application/openmetrics-text` (Prometheus does), else the Prometheus text
   * format 0.0.4 as always (which has no exemplars).
   */
  async scrape(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    if (!prefersOpenMetrics(accept)) return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: await this.registry.metrics() };
    return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: await this.openMetrics() };
  }

  /**
   * prom-client renders OpenMetrics from a registry of that type, and doing so renames every
   * counter it holds (metric.name loses `_total`, for good): rendered from our registry's own
   * metrics, the next Prometheus-format scrape would name counters without it. So each scrape
   * registers, in a throw-away OpenMetrics registry, a view of each metric under its own name
   * object, which the rendering may rename; the values are read from the metric itself.
   */
  private openMetrics(): Promise<string> {
    const open = new Registry<OpenMetricsContentType>();
    open.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const metric of this.registry.getMetricsAsArray() as unknown as RegisteredMetric[]) {
      const view: RegisteredMetric = {
        name: metric.name,
        help: metric.help,
        type: metric.type,
        async get() {
          // The family name the rendering settled on: a counter's without `_total`.
          return { ...(await metric.get()), name: view.name };
        },
      };
      open.registerMetric(view as unknown as Metric);
    }
    return open.metrics();
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
