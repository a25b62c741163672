import { context, propagation, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { DtxAttr, dtxTracer, SemconvAttr } from './dtx-tracer.js';

/** The requests the SDK's clients make of the coordinator's API, as their spans name them (`dtx.client {name}`). */
export const CLIENT_OPERATIONS = [
  'begin',
  'addBranch',
  'commit',
  'rollback',
  'get',
  'reportOutcome',
  'registerParticipant',
  'listParticipants',
  'deleteParticipant',
  'recordStep',
] as const;
export type ClientOperationName = (typeof CLIENT_OPERATIONS)[number];

/** One request to the coordinator, for its span: what it does, and the transaction when it names one. */
export interface CoordinatorOperation {
  name: ClientOperationName;
  gid?: string;
  /** On a begin. */
  mode?: string;
}

/** The span names, made once: a request builds no string for its span. */
const SPAN_NAMES = Object.fromEntries(CLIENT_OPERATIONS.map((name) => [name, `dtx.client ${name}`])) as Record<ClientOperationName, string>;

/**
 * The span of one request of a client to the coordinator (`dtx.client {operation}`, kind
 * CLIENT), over all its attempts: a child of the caller's active context, so it continues the
 * caller's trace or starts one. Each attempt carries its W3C trace context (`inject`), so the
 * coordinator's spans, and the participant calls it makes for the transaction, sit under it.
 *
 * Without an OpenTelemetry SDK registered the span is the API's non-recording one: no
 * attribute is set, and the propagator the API has then (a no-op) injects nothing.
 */
export class ClientSpan {
  private constructor(
    private readonly span: Span,
    private readonly active: Context,
  ) {}

  static start(operation: CoordinatorOperation, method: string): ClientSpan {
    const parent = context.active();
    const span = dtxTracer().startSpan(SPAN_NAMES[operation.name], { kind: SpanKind.CLIENT }, parent);
    if (span.isRecording()) {
      span.setAttribute(SemconvAttr.HTTP_REQUEST_METHOD, method);
      if (operation.gid !== undefined) span.setAttribute(DtxAttr.GID, operation.gid);
      if (operation.mode !== undefined) span.setAttribute(DtxAttr.MODE, operation.mode);
    }
    return new ClientSpan(span, trace.setSpan(parent, span));
  }

  get recording(): boolean {
    return this.span.isRecording();
  }

  /** Runs the request with this span active, so what instruments the HTTP client itself nests under it. */
  run<T>(work: () => Promise<T>): Promise<T> {
    return context.with(this.active, work);
  }

  /** Writes the span's trace context into an attempt's headers (`traceparent`, `tracestate`). */
  inject(headers: Record<string, string>): void {
    propagation.inject(this.active, headers);
  }

  /** The URL of the attempt being sent (the last one stays): pass it only when `recording`. */
  attempt(url: string): void {
    this.span.setAttribute(SemconvAttr.URL_FULL, url);
  }

  /** Ends the span with the answer: an error status for a 4xx or 5xx, `errorCode` (the coordinator's `error`) as its type. */
  answered(status: number, errorCode: string | undefined): void {
    if (this.span.isRecording()) {
      this.span.setAttribute(SemconvAttr.HTTP_RESPONSE_STATUS_CODE, status);
      if (status >= 400) {
        const type = errorCode ?? String(status);
        this.span.setAttribute(SemconvAttr.ERROR_TYPE, type);
        this.span.setStatus({ code: SpanStatusCode.ERROR, message: type });
      }
    }
    this.span.end();
  }

  /** Ends the span of a request that got no answer at all. */
  failed(error: unknown, errorType: string): void {
    if (this.span.isRecording()) {
      this.span.setAttribute(SemconvAttr.ERROR_TYPE, errorType);
      if (error instanceof Error) this.span.recordException(error);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : errorType });
    }
    this.span.end();
  }
}

/** A URL as a span may show it: without the user and password some write into a coordinator URL. */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = 'REDACTED';
    parsed.password = parsed.password ? 'REDACTED' : '';
    return parsed.toString().replace(/\/+$/, '');
  } catch {
    return url;
  }
}
