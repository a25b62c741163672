import { ValueType } from '@opentelemetry/api';
import { JsonMetricsSerializer } from '@opentelemetry/otlp-transformer';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { PROM_CLIENT_SCOPE, PromClientMetricProducer } from './prometheus-producer.js';

/** A registry with one metric of each kind the coordinator has, fed known values. */
function fedRegistry(): Registry {
  const registry = new Registry();
  const begun = new Counter({ name: 'dtx_test_begun_total', help: 'Begun', labelNames: ['mode'] as const, registers: [registry] });
  begun.inc({ mode: 'tcc' }, 3);
  begun.inc({ mode: 'saga' });
  const inDoubt = new Gauge({ name: 'dtx_test_in_doubt', help: 'In doubt', labelNames: ['status'] as const, registers: [registry] });
  inDoubt.set({ status: 'active' }, 2);
  inDoubt.set({ status: 'committing' }, 0);
  const calls = new Histogram({
    name: 'dtx_test_call_duration_seconds',
    help: 'Calls',
    labelNames: ['participant', 'outcome'] as const,
    buckets: [0.1, 1, 5],
    registers: [registry],
  });
  // bank/ok: 0.05 and 0.1 in the first bucket (le is inclusive), 0.5 in the second, 7 past the last.
  for (const seconds of [0.05, 0.1, 0.5, 7]) calls.observe({ participant: 'bank', outcome: 'ok' }, seconds);
  calls.observe({ participant: 'shop', outcome: 'failed' }, 2);
  return registry;
}

const byName = (metrics: MetricData[], name: string): MetricData => {
  const found = metrics.find((m) => m.descriptor.name === name);
  if (!found) throw new Error(`no metric ${name} among ${metrics.map((m) => m.descriptor.name).join(', ')}`);
  return found;
};

describe('PromClientMetricProducer', () => {
  it('converts counters to monotonic cumulative sums (without _total), gauges to gauges, histograms to per-bucket counts', async () => {
    const before = Date.now();
    const producer = new PromClientMetricProducer(fedRegistry());
    const { resourceMetrics, errors } = await producer.collect();
    expect(errors).toEqual([]);
    expect(resourceMetrics.scopeMetrics).toHaveLength(1);
    const [{ scope, metrics }] = resourceMetrics.scopeMetrics;
    expect(scope).toEqual({ name: PROM_CLIENT_SCOPE });
    expect(metrics.map((m) => m.descriptor.name)).toEqual(['dtx_test_begun', 'dtx_test_in_doubt', 'dtx_test_call_duration_seconds']);

    const strip = (metric: MetricData) => ({ ...metric, dataPoints: metric.dataPoints.map(({ attributes, value }) => ({ attributes, value })) });
    expect(strip(byName(metrics, 'dtx_test_begun'))).toEqual({
      descriptor: { name: 'dtx_test_begun', description: 'Begun', unit: '', valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints: [
        { attributes: { mode: 'tcc' }, value: 3 },
        { attributes: { mode: 'saga' }, value: 1 },
      ],
    });
    expect(strip(byName(metrics, 'dtx_test_in_doubt'))).toEqual({
      descriptor: { name: 'dtx_test_in_doubt', description: 'In doubt', unit: '', valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints: [
        { attributes: { status: 'active' }, value: 2 },
        { attributes: { status: 'committing' }, value: 0 },
      ],
    });
    expect(strip(byName(metrics, 'dtx_test_call_duration_seconds'))).toEqual({
      descriptor: { name: 'dtx_test_call_duration_seconds', description: 'Calls', unit: 's', valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: [
        { attributes: { participant: 'bank', outcome: 'ok' }, value: { buckets: { boundaries: [0.1, 1, 5], counts: [2, 1, 0, 1] }, sum: 0.05 + 0.1 + 0.5 + 7, count: 4 } },
        { attributes: { participant: 'shop', outcome: 'failed' }, value: { buckets: { boundaries: [0.1, 1, 5], counts: [0, 0, 1, 0] }, sum: 2, count: 1 } },
      ],
    });

    // Cumulative points share one start (the producer's), and end when collected.
    const points = metrics.flatMap((m): DataPoint<unknown>[] => m.dataPoints);
    const ms = ([s, ns]: [number, number]) => s * 1000 + ns / 1e6;
    for (const p of points) {
      expect(ms(p.startTime)).toBeGreaterThanOrEqual(before - 1);
      expect(ms(p.endTime)).toBeGreaterThanOrEqual(ms(p.startTime));
      expect(ms(p.endTime)).toBeLessThanOrEqual(Date.now() + 1);
    }
    expect(new Set(points.map((p) => p.startTime.join('.'))).size).toBe(1);
  });

  it('answers the error, and no metrics, when the registry cannot be read', async () => {
    const registry = new Registry();
    new Gauge({
      name: 'dtx_test_broken',
      help: 'Read from a store that is down',
      registers: [registry],
      collect: () => Promise.reject(new Error('store down')),
    });
    const { resourceMetrics, errors } = await new PromClientMetricProducer(registry).collect();
    expect(resourceMetrics.scopeMetrics).toEqual([]);
    expect(errors).toEqual([new Error('store down')]);
  });

  it('gives up on a registry slower than the collection timeout', async () => {
    const registry = new Registry();
    new Gauge({ name: 'dtx_test_slow', help: 'Slow', registers: [registry], collect: () => new Promise<void>((resolve) => setTimeout(resolve, 500)) });
    const { errors } = await new PromClientMetricProducer(registry).collect({ timeoutMillis: 20 });
    expect(String(errors[0])).toMatch(/not collected within 20 ms/);
  });
});

describe('PromClientMetricProducer under sdk-metrics', () => {
  let provider: MeterProvider | null = null;
  afterEach(async () => {
    await provider?.shutdown();
    provider = null;
  });

  it("exports the registry's metrics beside the SDK's own through a PeriodicExportingMetricReader, in a shape the OTLP serializer takes", async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({
      exporter,
      metricProducers: [new PromClientMetricProducer(fedRegistry())],
      // Exported on forceFlush below, not on a timer.
      exportIntervalMillis: 3_600_000,
    });
    provider = new MeterProvider({ readers: [reader] });
    provider.getMeter('spec').createCounter('sdk_counter').add(1);
    await reader.forceFlush();

    const exported: ResourceMetrics[] = exporter.getMetrics();
    expect(exported).toHaveLength(1);
    const scopes = exported[0].scopeMetrics.map((s) => s.scope.name);
    expect(scopes).toEqual(['spec', PROM_CLIENT_SCOPE]);
    const ours = exported[0].scopeMetrics[1].metrics;
    expect(ours.map((m) => [m.descriptor.name, m.dataPointType])).toEqual([
      ['dtx_test_begun', DataPointType.SUM],
      ['dtx_test_in_doubt', DataPointType.GAUGE],
      ['dtx_test_call_duration_seconds', DataPointType.HISTOGRAM],
    ]);

    // What the OTLP/HTTP JSON exporter would send.
    const body = JsonMetricsSerializer.serializeRequest(exported[0]);
    expect(body).toBeDefined();
    const request = JSON.parse(new TextDecoder().decode(body)) as {
      resourceMetrics: { scopeMetrics: { scope: { name: string }; metrics: Record<string, unknown>[] }[] }[];
    };
    const sent = request.resourceMetrics[0].scopeMetrics.find((s) => s.scope.name === PROM_CLIENT_SCOPE)!.metrics;
    const sentNamed = (name: string) => sent.find((m) => m.name === name)!;
    expect(sentNamed('dtx_test_begun').sum).toMatchObject({ isMonotonic: true, aggregationTemporality: 2 });
    expect(sentNamed('dtx_test_in_doubt').gauge).toMatchObject({ dataPoints: expect.arrayContaining([expect.objectContaining({ asDouble: 2 })]) });
    const histogram = sentNamed('dtx_test_call_duration_seconds').histogram as { dataPoints: Record<string, unknown>[] };
    const first = histogram.dataPoints[0];
    expect(first.attributes).toEqual([
      { key: 'participant', value: { stringValue: 'bank' } },
      { key: 'outcome', value: { stringValue: 'ok' } },
    ]);
    expect(first.explicitBounds).toEqual([0.1, 1, 5]);
    // 64-bit integers: the JSON encoding may write them as strings.
    expect((first.bucketCounts as unknown[]).map(Number)).toEqual([2, 1, 0, 1]);
    expect(Number(first.count)).toBe(4);
    expect(first.sum).toBeCloseTo(7.65);
  });
});
