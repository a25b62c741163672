/**
 * A real OTLP/HTTP receiver for the tests (https://opentelemetry.io/docs/specs/otlp/#otlphttp):
 * an HTTP server on loopback that takes `POST /v1/traces` and `POST /v1/metrics` in the JSON
 * encoding (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), decodes them, and keeps every span and
 * metric data point it was sent, with the `service.name` of the process that sent it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An OTLP `AnyValue` (JSON encoding): one of its members is set. */
interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: KeyValue[];
  status?: { code?: number; message?: string };
  links?: { traceId: string; spanId: string }[];
}
interface TracesRequest {
  resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}
interface OtlpDataPoint {
  attributes?: KeyValue[];
  asInt?: number | string;
  asDouble?: number;
  count?: number | string;
  sum?: number;
}
interface OtlpMetric {
  name: string;
  sum?: { dataPoints?: OtlpDataPoint[] };
  gauge?: { dataPoints?: OtlpDataPoint[] };
  histogram?: { dataPoints?: OtlpDataPoint[] };
}
interface MetricsRequest {
  resourceMetrics?: { resource?: { attributes?: KeyValue[] }; scopeMetrics?: { metrics?: OtlpMetric[] }[] }[];
}

export type AttributeValue = string | number | boolean | AttributeValue[];

/** OpenTelemetry's SpanKind numbers in OTLP: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;
/** OTLP status codes: 0 unset, 1 ok, 2 error. */
export const STATUS_ERROR = 2;

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, AttributeValue>;
  status: { code: number; message?: string };
  links: { traceId: string; spanId: string }[];
  startNs: bigint;
}

export interface ReceivedPoint {
  service: string;
  metric: string;
  attributes: Record<string, AttributeValue>;
  /** A sum's or gauge's value; a histogram's count. */
  value: number;
}

function valueOf(value: AnyValue | undefined): AttributeValue {
  if (!value) return '';
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(valueOf);
  return '';
}

function attributesOf(list: KeyValue[] | undefined): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) attributes[key] = valueOf(value);
  return attributes;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly points: ReceivedPoint[] = [];
  /** Requests it could not decode (a test fails on any). */
  readonly refused: string[] = [];
  private server: Server | null = null;
  private port = 0;

  /** The endpoint for OTEL_EXPORTER_OTLP_ENDPOINT: the exporters add /v1/traces and /v1/metrics. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        try {
          if (request.method !== 'POST') throw new Error(`${request.method} ${request.url}`);
          if (!(request.headers['content-type'] ?? '').startsWith('application/json')) throw new Error(`content-type ${request.headers['content-type']}: set OTEL_EXPORTER_OTLP_PROTOCOL=http/json`);
          if (request.url === '/v1/traces') this.takeSpans(JSON.parse(body) as TracesRequest);
          else if (request.url === '/v1/metrics') this.takePoints(JSON.parse(body) as MetricsRequest);
          else if (request.url !== '/v1/logs') throw new Error(`unknown path ${request.url}`);
          response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } catch (error) {
          this.refused.push(String(error));
          response.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Every span of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  private takeSpans(request: TracesRequest): void {
    for (const resource of request.resourceSpans ?? []) {
      const service = String(attributesOf(resource.resource?.attributes)['service.name'] ?? '');
      for (const scope of resource.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            service,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? '',
            name: span.name,
            kind: span.kind ?? 0,
            attributes: attributesOf(span.attributes),
            status: { code: span.status?.code ?? 0, message: span.status?.message },
            links: (span.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
            startNs: BigInt(span.startTimeUnixNano ?? 0),
          });
        }
      }
    }
  }

  private takePoints(request: MetricsRequest): void {
    for (const resource of request.resourceMetrics ?? []) {
      const service = String(attributesOf(resource.resource?.attributes)['service.name'] ?? '');
      for (const scope of resource.scopeMetrics ?? []) {
        for (const metric of scope.metrics ?? []) {
          const histogram = metric.histogram?.dataPoints;
          for (const point of histogram ?? metric.sum?.dataPoints ?? metric.gauge?.dataPoints ?? []) {
            const value = histogram ? Number(point.count ?? 0) : Number(point.asInt ?? point.asDouble ?? 0);
            this.points.push({ service, metric: metric.name, attributes: attributesOf(point.attributes), value });
          }
        }
      }
    }
  }
}
