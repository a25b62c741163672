import type { NodeSDK } from '@opentelemetry/sdk-node';

/**
 * OpenTelemetry for a demo service, as an application using the SDK turns it on: the official
 * `NodeSDK`, configured by the standard OTEL_* variables, started before the app. Off unless an
 * OTLP endpoint or a trace exporter is set (and only then is the SDK loaded). The participant SDK then puts each call it handles
 * in a span under the coordinator's call, and the service's own spans under that.
 */
export async function startServiceTelemetry(service: string): Promise<NodeSDK | null> {
  const env = process.env;
  if (env.OTEL_SDK_DISABLED === 'true') return null;
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT && !env.OTEL_TRACES_EXPORTER) return null;
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ? undefined : service,
    // Traces only: the demo services have no metrics of their own to export.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  // Spans still queued are exported before the process ends.
  process.once('beforeExit', () => void sdk.shutdown());
  return sdk;
}
