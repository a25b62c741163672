import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { TRACE_CONTEXT_HEADERS, type TraceContextHeaders } from '@nest-dtx/protocol';
import type { DispatchAnswer } from '../participant/branch-dispatcher.js';
import { ParticipantErrorCode, type ParticipantErrorBody } from '../participant/participant-errors.js';
import { isPhaseCall } from '../participant/phase-call.js';
import { DtxAttr, dtxTracer, SemconvAttr } from './dtx-tracer.js';

/** What a participant answered a call, as its span's `dtx.outcome` says. */
export type HandleOutcome = 'ok' | 'failed' | 'ongoing' | 'refused' | 'error';

/** An outcome, and the code sent with it when it is no success (the span's `error.type`). */
export interface HandleResult {
  outcome: HandleOutcome;
  errorType?: string;
}

/**
 * Where calls come from: the span kind and the attributes every call of one transport shares,
 * made once when the transport is connected (so a call builds none of them).
 */
export interface CallSource {
  kind: SpanKind;
  attributes: Attributes;
}

/** The span's name until the call is verified: nothing the caller sent goes into it before that. */
const UNVERIFIED_NAME = 'dtx.handle';

/**
 * The span of one call a participant received (`dtx.handle {action}/{phase}`), a child of the
 * coordinator's call whose W3C trace context came with it. Started when the call arrives, named
 * and given the call's ids only once its signature verified (a refused call keeps the bare name
 * and no id from its unverified body), and active while the business and the barrier run
 * (`run`), so a span the business starts, and its database calls' spans, sit under it.
 *
 * Without an OpenTelemetry SDK registered the span is the API's non-recording one: every
 * attribute below is skipped on `isRecording()`, so a call costs a few function calls.
 */
export class HandleSpan {
  private ended = false;

  private constructor(
    private readonly span: Span,
    private readonly active: Context,
  ) {}

  static start(source: CallSource, carrier: TraceContextHeaders): HandleSpan {
    const parent = propagation.extract(ROOT_CONTEXT, carrier);
    const span = dtxTracer().startSpan(UNVERIFIED_NAME, { kind: source.kind }, parent);
    if (span.isRecording()) span.setAttributes(source.attributes);
    return new HandleSpan(span, trace.setSpan(parent, span));
  }

  /** The verified call (parsed from the content the signature covered): names the span after it. */
  identify(call: unknown): void {
    if (!this.span.isRecording() || !isPhaseCall(call)) return;
    this.span.updateName(`dtx.handle ${call.action}/${call.phase}`);
    this.span.setAttributes({
      [DtxAttr.GID]: call.gid,
      [DtxAttr.BRANCH_ID]: call.branchId,
      [DtxAttr.MODE]: call.mode,
      [DtxAttr.ACTION]: call.action,
      [DtxAttr.PHASE]: call.phase,
    });
  }

  /** Runs `work` (the dispatch: barrier, business, their database calls) with this span active. */
  run<T>(work: () => Promise<T>): Promise<T> {
    return context.with(this.active, work);
  }

  /** Sets an attribute of the transport's own (an HTTP status) on a recording span. */
  set(name: string, value: string | number | boolean): void {
    if (this.span.isRecording()) this.span.setAttribute(name, value);
  }

  /** Ends the span with the participant's answer; `error`, when something was thrown, is recorded as an exception. */
  end({ outcome, errorType }: HandleResult, error?: unknown): void {
    // Once: an answer that failed to go out after its span ended (its body would not serialise) is not a second outcome.
    if (this.ended) return;
    this.ended = true;
    if (this.span.isRecording()) {
      this.span.setAttribute(DtxAttr.OUTCOME, outcome);
      if (outcome === 'failed' || outcome === 'refused' || outcome === 'error') {
        if (errorType !== undefined) this.span.setAttribute(SemconvAttr.ERROR_TYPE, errorType);
        if (error instanceof Error) this.span.recordException(error);
        this.span.setStatus({ code: SpanStatusCode.ERROR, message: errorType ?? outcome });
      }
    }
    this.span.end();
  }
}

/** A dispatcher's answer as an outcome: `invalid` was refused (nothing ran), the two others are transient errors. */
export function answerResult(answer: DispatchAnswer): HandleResult {
  switch (answer.kind) {
    case 'ok':
    case 'ongoing':
      return { outcome: answer.kind };
    case 'failed':
      return { outcome: 'failed', errorType: ParticipantErrorCode.BUSINESS_FAILURE };
    case 'invalid':
      return { outcome: 'refused', errorType: ParticipantErrorCode.INVALID_PHASE_CALL };
    case 'schema_missing':
      return { outcome: 'error', errorType: ParticipantErrorCode.DTX_SCHEMA_MISSING };
    case 'ongoing_not_supported':
      return { outcome: 'error', errorType: ParticipantErrorCode.ONGOING_NOT_SUPPORTED };
  }
}

/** An error answer of the participant as an outcome: a 409 is the business's refusal, a 5xx transient, any other 4xx a refused call. */
export function errorBodyResult(body: ParticipantErrorBody): HandleResult {
  if (body.error === ParticipantErrorCode.BUSINESS_FAILURE) return { outcome: 'failed', errorType: body.error };
  return { outcome: body.statusCode >= 500 ? 'error' : 'refused', errorType: body.error };
}

/**
 * The trace context among a call's headers, as the plain object of the two names that
 * `propagation.extract` reads with its default getter. A repeated header (an array) counts by its first value.
 */
export function traceHeadersOf(headers: Readonly<Record<string, string | readonly string[] | undefined>>): TraceContextHeaders {
  const found: TraceContextHeaders = {};
  for (const name of TRACE_CONTEXT_HEADERS) {
    const value = headers[name];
    const text = typeof value === 'string' ? value : value?.[0];
    if (text) found[name] = text;
  }
  return found;
}

/** The span kind and shared attributes of calls from each transport: a server for HTTP, TCP and Redis, a consumer on a broker. */
export const CallSources = {
  http(route: string): CallSource {
    return {
      kind: SpanKind.SERVER,
      attributes: { [DtxAttr.TRANSPORT]: 'http', [SemconvAttr.HTTP_REQUEST_METHOD]: 'POST', [SemconvAttr.HTTP_ROUTE]: route },
    };
  },
  tcp(): CallSource {
    return { kind: SpanKind.SERVER, attributes: { [DtxAttr.TRANSPORT]: 'tcp', [SemconvAttr.NETWORK_TRANSPORT]: 'tcp' } };
  },
  /** Redis pub/sub has no messaging convention of its own: the SDK's attribute says which transport. */
  redis(): CallSource {
    return { kind: SpanKind.SERVER, attributes: { [DtxAttr.TRANSPORT]: 'redis' } };
  },
  rabbitmq(queue: string): CallSource {
    return { kind: SpanKind.CONSUMER, attributes: { [DtxAttr.TRANSPORT]: 'rabbitmq', ...consumed('rabbitmq', queue) } };
  },
  nats(subject: string, queueGroup: string): CallSource {
    return {
      kind: SpanKind.CONSUMER,
      attributes: { [DtxAttr.TRANSPORT]: 'nats', ...consumed('nats', subject), [SemconvAttr.MESSAGING_CONSUMER_GROUP_NAME]: queueGroup },
    };
  },
} as const;

/** The messaging attributes of a message processed from `destination` (a queue, a subject). */
export function consumed(system: 'rabbitmq' | 'nats', destination: string | undefined): Attributes {
  const attributes: Attributes = { [SemconvAttr.MESSAGING_SYSTEM]: system, [SemconvAttr.MESSAGING_OPERATION_TYPE]: 'process' };
  if (destination) attributes[SemconvAttr.MESSAGING_DESTINATION_NAME] = destination;
  return attributes;
}
