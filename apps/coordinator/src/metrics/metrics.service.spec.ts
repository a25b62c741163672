import { context, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinatorConfig, loadCoordinatorEnv } from '../config/coordinator.config.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import { MetricsService, prefersOpenMetrics, sampledSpanIds } from './metrics.service.js';
import { setTracingOn } from '../telemetry/tracing.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const OPEN_METRICS = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** A MetricsService whose in-doubt gauges read an empty log. */
function metricsService(): MetricsService {
  const db = { query: () => Promise.resolve([]) } as unknown as DataSource;
  return new MetricsService(db, new ParticipantGates(new CoordinatorConfig(loadCoordinatorEnv({}))));
}

/** Runs `fn` with a span of these flags active, as the tracing core's spans are around a call. */
function underSpan<T>(traceFlags: TraceFlags, fn: () => T): T {
  const span = trace.wrapSpanContext({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags });
  return context.with(trace.setSpan(ROOT_CONTEXT, span), fn);
}

const bucketLines = (text: string) => text.split('\n').filter((line) => line.startsWith('dtx_phase_call_duration_seconds_bucket{'));

describe('MetricsService exemplars', () => {
  // The API finds no active span without a context manager: the one the SDK would install; and
  // the coordinator reads spans only with tracing on (telemetry/tracing.ts), as the SDK's start sets it.
  const manager = new AsyncLocalStorageContextManager();
  beforeAll(() => {
    context.setGlobalContextManager(manager.enable());
    setTracingOn(true);
  });
  afterAll(() => {
    setTracingOn(false);
    context.disable();
  });

  it('puts the trace and span ids of a sampled span on the bucket of the call, in OpenMetrics only', async () => {
    const metrics = metricsService();
    underSpan(TraceFlags.SAMPLED, () => metrics.observeCall({ participant: 'bank', phase: 'try', outcome: 'ok' }, 0.03, ...sampledSpanIds()));

    const open = await metrics.scrape(OPEN_METRICS);
    expect(open.contentType).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const withExemplar = bucketLines(open.body).filter((line) => line.includes(' # {'));
    // The first bucket 0.03 fits: le="0.05"; each bucket keeps the last call that fell in it.
    expect(withExemplar).toHaveLength(1);
    expect(withExemplar[0]).toMatch(
      new RegExp(`^dtx_phase_call_duration_seconds_bucket\\{le="0\\.05",participant="bank",phase="try",outcome="ok"\\} 1 # \\{trace_id="${TRACE_ID}",span_id="${SPAN_ID}"\\} 0\\.03 \\d+(\\.\\d+)?$`),
    );
    expect(open.body.endsWith('# EOF\n')).toBe(true);

    const plain = await metrics.scrape(undefined);
    expect(plain.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(plain.body).not.toContain('trace_id');
    expect(plain.body).toContain('dtx_phase_call_duration_seconds_bucket{le="0.05",participant="bank",phase="try",outcome="ok"} 1');
  });

  it('keeps no exemplar without a span, or with one not sampled', async () => {
    const metrics = metricsService();
    metrics.observeCall({ participant: 'bank', phase: 'try', outcome: 'ok' }, 0.03, ...sampledSpanIds());
    underSpan(TraceFlags.NONE, () => metrics.observeCall({ participant: 'bank', phase: 'confirm', outcome: 'ok' }, 0.2, ...sampledSpanIds()));
    expect(underSpan(TraceFlags.NONE, () => sampledSpanIds())).toEqual([]);
    expect(sampledSpanIds()).toEqual([]);

    const { body } = await metrics.scrape(OPEN_METRICS);
    expect(bucketLines(body).length).toBeGreaterThan(0);
    expect(body).not.toContain('# {');
    expect(body).toContain('dtx_phase_call_duration_seconds_count{participant="bank",phase="confirm",outcome="ok"} 1');
  });
});

describe('MetricsService formats', () => {
  it("keeps counters' _total in the Prometheus format after an OpenMetrics scrape (prom-client would rename them for good)", async () => {
    const metrics = metricsService();
    metrics.begun.inc({ mode: 'tcc' });
    const before = (await metrics.scrape('text/plain')).body;
    const open = (await metrics.scrape(OPEN_METRICS)).body;
    // OpenMetrics: the family is named without _total, its sample with it.
    expect(open).toContain('# TYPE dtx_transactions_begun counter');
    expect(open).toContain('dtx_transactions_begun_total{mode="tcc"} 1');
    const after = (await metrics.scrape('text/plain')).body;
    expect(after).toContain('# TYPE dtx_transactions_begun_total counter');
    expect(after).toContain('dtx_transactions_begun_total{mode="tcc"} 1');
    // Everything but the process' own readings (CPU, memory...) is as before.
    const stable = (text: string) => text.split('\n').filter((line) => line.startsWith('dtx_transactions_') || line.startsWith('# TYPE'));
    expect(stable(after)).toEqual(stable(before));
  });

  it('serves OpenMetrics only to a scraper that asks for it first', () => {
    expect(prefersOpenMetrics(OPEN_METRICS)).toBe(true);
    expect(prefersOpenMetrics('application/openmetrics-text')).toBe(true);
    expect(prefersOpenMetrics(undefined)).toBe(false);
    expect(prefersOpenMetrics('*/*')).toBe(false);
    expect(prefersOpenMetrics('text/plain;version=0.0.4')).toBe(false);
    expect(prefersOpenMetrics('text/plain, application/openmetrics-text;q=0.5')).toBe(false);
    expect(prefersOpenMetrics('application/openmetrics-text;q=0')).toBe(false);
  });
});
