import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { Registry } from 'prom-client';
import { setTracingOn } from './tracing.js';

/** The process environment, as OpenTelemetry's SDK reads it. */
type Environment = Record<string, string | undefined>;

/** What the standard OTEL_* variables turn on: spans, metrics over OTLP, or neither (the default). */
export interface TelemetrySettings {
  readonly traces: boolean;
  readonly metrics: boolean;
}

const set = (value: string | undefined): boolean => value !== undefined && value.trim() !== '';
const list = (value: string | undefined): string[] => (value ?? '').split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '');

/**
 * Off unless configured: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` for both, or the
 * signal's own `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`) or an exporter named for the
 * signal (`OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, e.g. `console`). `none` turns a
 * signal off, `OTEL_SDK_DISABLED=true` both, as the specification says.
 */
export function telemetrySettings(env: Environment): TelemetrySettings {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return { traces: false, metrics: false };
  const endpoint = set(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const signal = (exporters: string[], ownEndpoint: string | undefined): boolean => {
    if (exporters.includes('none')) return false;
    return exporters.length > 0 || endpoint || set(ownEndpoint);
  };
  return {
    traces: signal(list(env.OTEL_TRACES_EXPORTER), env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
    metrics: signal(list(env.OTEL_METRICS_EXPORTER), env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT),
  };
}

/**
 * The OTLP metric exporter of the protocol configured (http/protobuf by default, as the
 * specification says); each reads its endpoint and headers from the environment. Loaded only
 * then, as the SDK is: a coordinator without telemetry loads none of it.
 */
async function otlpMetricExporter(env: Environment): Promise<PushMetricExporter> {
  const protocol = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol === 'grpc') return new (await import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter();
  if (protocol === 'http/json') return new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter();
  return new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
}

/** The running SDK, flushed and stopped with the app. */
export interface Telemetry {
  readonly settings: TelemetrySettings;
  shutdown(): Promise<void>;
}

/**
 * Starts OpenTelemetry for this process when the environment configures it (null otherwise:
 * then not even the SDK's modules are loaded, only the API the spans go through). Spans:
 * exporter, sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), propagators and resource
 * all as the environment says, through the official `NodeSDK`. Metrics: the coordinator's own
 * instruments, read at each export from `registry` (the Prometheus one, so they are the same
 * numbers `/metrics` shows: prometheus-producer.ts), pushed over OTLP every
 * `OTEL_METRIC_EXPORT_INTERVAL` ms.
 */
export async function startTelemetry(env: Environment, registry: Registry): Promise<Telemetry | null> {
  const settings = telemetrySettings(env);
  if (!settings.traces && !settings.metrics) return null;
  const [{ NodeSDK }, { PeriodicExportingMetricReader }, { PromClientMetricProducer }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/sdk-metrics'),
    import('./prometheus-producer.js'),
  ]);
  const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) names it; this is the default.
    serviceName: set(env.OTEL_SERVICE_NAME) || /(^|,)\s*service\.name=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '') ? undefined : 'nest-dtx-coordinator',
    // Spans from the environment's exporter when traces are on, none otherwise.
    ...(settings.traces ? {} : { spanProcessors: [] }),
    metricReaders: settings.metrics
      ? [
          new PeriodicExportingMetricReader({
            exporter: await otlpMetricExporter(env),
            metricProducers: [new PromClientMetricProducer(registry)],
            // The export's timeout may not be longer than the interval (the reader refuses that).
            ...(Number.isInteger(interval) && interval > 0 ? { exportIntervalMillis: interval, exportTimeoutMillis: Math.min(interval, 30_000) } : {}),
          }),
        ]
      : [],
    // The coordinator's logs are its JSON lines on stdout (with trace_id and span_id), not OTLP logs.
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  setTracingOn(settings.traces);
  return {
    settings,
    async shutdown() {
      setTracingOn(false);
      await sdk.shutdown();
    },
  };
}
