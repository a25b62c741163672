import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { callWithTimeout, millisToHrTime, TimeoutError } from '@opentelemetry/core';
import { emptyResource, type Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricCollectOptions,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { Registry } from 'prom-client';

/** One series of a prom-client metric as `registry.getMetricsAsJSON()` gives it. */
interface PromValue {
  value: number;
  labels: Record<string, string | number | undefined>;
  /** Set on a histogram's series: `<name>_bucket`, `<name>_sum` or `<name>_count`. */
  metricName?: string;
}

/** A metric of `registry.getMetricsAsJSON()`; its `type` is the string of prom-client's `this.type`. */
interface PromMetric {
  name: string;
  help: string;
  type: string;
  values: PromValue[];
}

export interface PromClientMetricProducerOptions {
  /**
   * The resource of the ResourceMetrics this producer returns. A MetricReader keeps only the
   * scope metrics of an extra producer (MetricReader.collect takes the resource of its
   * MeterProvider's), so this only matters to a caller exporting collect()'s answer itself.
   */
  resource?: Resource;
  /** The instrumentation scope the converted metrics are reported under. */
  scopeName?: string;
}

/** The scope under which the coordinator's prom-client metrics go out over OTLP. */
export const PROM_CLIENT_SCOPE = '@nest-dtx/coordinator/prom-client';

/**
 * The unit OTLP carries, from the Prometheus base-unit suffix: a Prometheus-bound pipeline
 * (the Collector, Prometheus' OTLP receiver) then keeps the name as it is rather than adding a
 * unit suffix of its own.
 */
function unitOf(name: string): string {
  if (name.endsWith('_seconds') || name.endsWith('_seconds_total')) return 's';
  if (name.endsWith('_bytes') || name.endsWith('_bytes_total')) return 'By';
  return '';
}

/** Labels as attributes; prom-client leaves a label never given out of `labels`, and `undefined` out of the attributes too. */
function attributesOf(labels: PromValue['labels'], without?: string): Attributes {
  const attributes: Attributes = {};
  for (const [name, value] of Object.entries(labels)) {
    if (name !== without && value !== undefined) attributes[name] = String(value);
  }
  return attributes;
}

/** The key of a histogram series: its labels but `le`, in a stable order. */
function seriesKey(attributes: Attributes): string {
  return JSON.stringify(Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The metrics of a prom-client registry, as an OpenTelemetry MetricProducer: a MetricReader
 * given it (`new PeriodicExportingMetricReader({ exporter, metricProducers: [producer] })`)
 * reads the registry at each collection and exports what it holds. The hot path records once,
 * in prom-client; nothing is recorded twice, and nothing runs while no reader collects.
 *
 * Conversion: a counter is a monotonic cumulative Sum, a gauge a Gauge, a histogram a
 * Histogram with explicit bounds (prom-client's cumulative `le` buckets turned into per-bucket
 * counts, plus sum and count); labels become attributes. Names stay, except that a counter's
 * `_total` suffix is dropped: OpenTelemetry's naming has no such suffix, and the pipelines that
 * turn OTLP into Prometheus series (the Collector's exporters, Prometheus' OTLP receiver) add it
 * back to a monotonic Sum, so the series end up named as on `/metrics`. A summary (the
 * coordinator has none) has no OpenTelemetry counterpart in sdk-metrics' data model: skipped.
 *
 * Cumulative points start when the producer was made: prom-client does not keep when a series
 * began, and its counters count from the start of the process, shortly before.
 */
export class PromClientMetricProducer implements MetricProducer {
  private readonly startTime: HrTime = millisToHrTime(Date.now());
  private readonly resource: Resource;
  private readonly scopeName: string;

  constructor(
    private readonly registry: Registry,
    options: PromClientMetricProducerOptions = {},
  ) {
    this.resource = options.resource ?? emptyResource();
    this.scopeName = options.scopeName ?? PROM_CLIENT_SCOPE;
  }

  async collect(options?: MetricCollectOptions): Promise<CollectionResult> {
    let promMetrics: PromMetric[];
    const timeoutMs = options?.timeoutMillis;
    try {
      const collected = this.registry.getMetricsAsJSON();
      promMetrics = (await (timeoutMs === undefined ? collected : callWithTimeout(collected, timeoutMs))) as unknown as PromMetric[];
    } catch (error) {
      // One failed collect (Postgres down under the in-doubt gauges) exports nothing this round;
      // the reader reports the error and tries again at its next interval.
      const reported = error instanceof TimeoutError ? new Error(`prom-client registry not collected within ${timeoutMs} ms`) : error;
      return { resourceMetrics: { resource: this.resource, scopeMetrics: [] }, errors: [reported] };
    }
    const endTime = millisToHrTime(Date.now());
    const metrics = promMetrics.flatMap((metric) => this.convert(metric, endTime));
    return {
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: { name: this.scopeName }, metrics }] },
      errors: [],
    };
  }

  private convert(metric: PromMetric, endTime: HrTime): MetricData[] {
    const point = <T>(attributes: Attributes, value: T): DataPoint<T> => ({ startTime: this.startTime, endTime, attributes, value });
    // What every kind carries: the descriptor under `name`, and cumulative points (prom-client's never reset).
    const shared = (name: string) => ({
      descriptor: { name, description: metric.help, unit: unitOf(metric.name), valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
    });
    const values = () => metric.values.map((v) => point(attributesOf(v.labels), v.value));
    switch (metric.type) {
      case 'counter':
        return [{ ...shared(metric.name.replace(/_total$/, '')), dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: values() }];
      case 'gauge':
        return [{ ...shared(metric.name), dataPointType: DataPointType.GAUGE, dataPoints: values() }];
      case 'histogram':
        return [{ ...shared(metric.name), dataPointType: DataPointType.HISTOGRAM, dataPoints: histogramPoints(metric).map(({ attributes, value }) => point(attributes, value)) }];
      default:
        return [];
    }
  }
}

/** A histogram's series, from its `_bucket` (cumulative, by `le`), `_sum` and `_count` values. */
function histogramPoints(metric: PromMetric): { attributes: Attributes; value: Histogram }[] {
  const series = new Map<string, { attributes: Attributes; buckets: { le: number; count: number }[]; sum: number; count: number }>();
  const seriesOf = (attributes: Attributes) => {
    const key = seriesKey(attributes);
    let found = series.get(key);
    if (!found) series.set(key, (found = { attributes, buckets: [], sum: 0, count: 0 }));
    return found;
  };
  for (const v of metric.values) {
    if (v.metricName === `${metric.name}_bucket`) {
      const le = Number(v.labels.le); // '+Inf' reads as Infinity
      if (Number.isFinite(le)) seriesOf(attributesOf(v.labels, 'le')).buckets.push({ le, count: v.value });
    } else if (v.metricName === `${metric.name}_sum`) {
      seriesOf(attributesOf(v.labels)).sum = v.value;
    } else if (v.metricName === `${metric.name}_count`) {
      seriesOf(attributesOf(v.labels)).count = v.value;
    }
  }
  return [...series.values()].map(({ attributes, buckets, sum, count }) => {
    buckets.sort((a, b) => a.le - b.le);
    // OpenTelemetry counts each bucket on its own, with one more past the last bound: the
    // differences of the cumulative counts, and what the total has past the last finite `le`.
    const counts: number[] = [];
    let below = 0;
    for (const { count: upTo } of buckets) {
      counts.push(upTo - below);
      below = upTo;
    }
    counts.push(count - below);
    return { attributes, value: { buckets: { boundaries: buckets.map((b) => b.le), counts }, sum, count } };
  });
}
