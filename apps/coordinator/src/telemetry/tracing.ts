import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';
import type { CallOutcome, GlobalStatus, Mode, TraceContextHeaders } from '@nest-dtx/protocol';
import { isTraceParent, spanContextOf, traceParentOf } from './trace-parent.js';

/**
 * The coordinator's spans (docs/observability.md "Traces"). Like the OpenTelemetry API they are
 * made through, these are process-wide: the API's tracer provider is global, and the SDK is
 * started once per process, before the app (telemetry-sdk.ts). With tracing off (the default),
 * every function here returns at its first line, makes no span and reads no context: the hot
 * path pays one boolean test per call.
 *
 * The shape of a transaction's trace: its begin makes the span `dtx.transaction <mode>`, a child
 * of the client's context (its `traceparent`), and the transaction keeps that span's traceparent
 * in the log. Every later span about the transaction, on any instance and after any restart
 * (a decision, a recovery, each participant call), is made under that stored traceparent, or
 * under the active span of the same work. The transaction span itself ends when this process
 * hears (on the bus) that the transaction is terminal; an instance that stops first ends it
 * then, marked unfinished.
 */

const tracer = trace.getTracer('nest-dtx-coordinator');

let tracesOn = false;

/** Whether this process makes spans (an OpenTelemetry trace exporter is configured: telemetry-sdk.ts). */
export const tracingOn = (): boolean => tracesOn;

/** Turns spans on or off for this process: telemetry-sdk.ts, when it started a tracer provider; tests, around theirs. */
export function setTracingOn(on: boolean): void {
  tracesOn = on;
}

/** The span context of the span active now, when there is one (a log line's trace, a write's link). */
export function activeSpanContext(): SpanContext | undefined {
  if (!tracesOn) return undefined;
  const span = trace.getSpan(context.active());
  if (!span) return undefined;
  const spanContext = span.spanContext();
  return trace.isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** The context a span about a stored transaction is made in: its active span's when in the same trace, the stored traceparent's otherwise (a new trace when none). */
function transactionContext(traceParent: string | null): Context {
  const active = context.active();
  const remote = traceParent === null ? null : spanContextOf(traceParent);
  if (!remote) return active;
  const current = trace.getSpan(active)?.spanContext();
  if (current && current.traceId === remote.traceId) return active;
  return trace.setSpanContext(active, remote);
}

/**
 * The parent a context's new spans would have, when its trace is not sampled: then no span of
 * the coordinator's is made under it (nor would one be recorded: every standard sampler decides
 * a trace once, by its parent or by its trace id), and the work runs in the parent's context, its
 * ids still on the log lines and on the calls. Most work is in such traces at a low sampling ratio.
 */
function unsampledParent(parent: Context): SpanContext | null {
  const spanContext = trace.getSpanContext(parent);
  return spanContext && (spanContext.traceFlags & TraceFlags.SAMPLED) === 0 && trace.isSpanContextValid(spanContext) ? spanContext : null;
}

/** The W3C headers that make a participant's spans children of `spanContext`. */
function headersOf(spanContext: SpanContext): TraceContextHeaders {
  const headers: TraceContextHeaders = { traceparent: traceParentOf(spanContext) };
  const state = spanContext.traceState?.serialize();
  if (state) headers.tracestate = state;
  return headers;
}

// ---- the transaction span -------------------------------------------------------------------

/** A begin's trace: the traceparent the transaction keeps, and the span this process began for it. */
export interface BeginTrace {
  readonly traceParent: string | null;
  readonly span?: Span;
}

/**
 * The trace of a begin. Tracing off: the client's traceparent, kept as sent when well formed
 * (and sent on every call, so participants with tracing of their own continue the client's
 * trace). On: the span `dtx.transaction <mode>`, child of the client's context, whose own
 * traceparent the transaction keeps.
 */
export function beginTrace(mode: Mode, incoming: TraceContextHeaders): BeginTrace {
  if (!tracesOn) return { traceParent: isTraceParent(incoming.traceparent) ? incoming.traceparent : null };
  const parent = propagation.extract(ROOT_CONTEXT, incoming);
  const span = tracer.startSpan(`dtx.transaction ${mode}`, { kind: SpanKind.SERVER, attributes: { 'dtx.mode': mode } }, parent);
  return { traceParent: traceParentOf(span.spanContext()), span };
}

/** Runs a begin's work in its transaction span, so the spans and log lines of the work are under it. */
export function inBeginTrace<T>(begun: BeginTrace, work: () => Promise<T>): Promise<T> {
  if (!begun.span) return work();
  return context.with(trace.setSpan(context.active(), begun.span), work);
}

/** Transaction spans this process began and has not yet heard end, by gid. */
const openTransactions = new Map<string, Span>();
/** Past this many open transaction spans, the oldest is ended (marked unfinished): memory stays bounded. */
const MAX_OPEN_TRANSACTIONS = 10_000;

/**
 * What became of a begin: a new transaction's span stays open until it is terminal; a begin that
 * found its transaction already there (a retried begin) or failed ends its span now.
 */
export function begun(begin: BeginTrace, gid: string, outcome: { created: boolean; status: GlobalStatus } | { error: unknown }): void {
  const { span } = begin;
  // Not sampled: nothing is recorded, so nothing to end or to hold.
  if (!span?.isRecording()) return;
  span.setAttribute('dtx.gid', gid);
  if ('error' in outcome) {
    span.recordException(outcome.error instanceof Error ? outcome.error : String(outcome.error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error instanceof Error ? outcome.error.message : String(outcome.error) });
    span.end();
    return;
  }
  if (!outcome.created) {
    span.setAttribute('dtx.begin.repeated', true);
    span.end();
    return;
  }
  if (outcome.status === 'committed' || outcome.status === 'rolled_back') {
    endTransactionSpan(span, outcome.status);
    return;
  }
  if (openTransactions.size >= MAX_OPEN_TRANSACTIONS) {
    const [oldest] = openTransactions.keys();
    endUnfinished(oldest);
  }
  openTransactions.set(gid, span);
}

/** A transaction was seen terminal (this instance or another wrote it): its span, if this process holds it, ends now. */
export function transactionEnded(gid: string, status: GlobalStatus): void {
  const span = openTransactions.get(gid);
  if (!span) return;
  openTransactions.delete(gid);
  endTransactionSpan(span, status);
}

/** Ends every transaction span still open (the process stops): marked unfinished, their transactions go on elsewhere. */
export function endOpenTransactionSpans(): void {
  for (const gid of [...openTransactions.keys()]) endUnfinished(gid);
}

function endUnfinished(gid: string): void {
  const span = openTransactions.get(gid);
  openTransactions.delete(gid);
  span?.setAttribute('dtx.transaction.unfinished', true);
  span?.end();
}

function endTransactionSpan(span: Span, status: GlobalStatus): void {
  span.setAttribute('dtx.status', status);
  span.end();
}

// ---- spans of work on a stored transaction ------------------------------------------------------

/** What a span about a stored transaction needs of it. */
export interface TracedTransaction {
  readonly gid: string;
  readonly mode: Mode;
  readonly traceParent: string | null;
}

/**
 * Runs `work` in a span `name` about the transaction (a decision, a recovery, an added branch),
 * under its trace. `links`: spans this one is part of without being their child (a recovery
 * pass). Off: `work()` alone.
 */
export function inTransactionSpan<T>(name: string, tx: TracedTransaction, work: () => Promise<T>, links?: Link[]): Promise<T> {
  if (!tracesOn) return work();
  const parent = transactionContext(tx.traceParent);
  if (unsampledParent(parent)) return parent === context.active() ? work() : context.with(parent, work);
  const span = tracer.startSpan(name, { attributes: { 'dtx.gid': tx.gid, 'dtx.mode': tx.mode }, links }, parent);
  return runInSpan(span, parent, work);
}

// ---- participant calls ---------------------------------------------------------------------------

/** Who and what one participant call is, for its span. */
export interface CallDescription {
  readonly tx: TracedTransaction;
  readonly branchId: string;
  readonly participant: string;
  readonly action: string;
  readonly phase: string;
  /** The mode the call's body names (a workflow step's kind's). */
  readonly mode: Mode;
  /** Which call to this branch it is, from 1, every phase counted (the history's `attempt`): a retry is the next number. */
  readonly attempt: number;
  readonly transport: string;
  /** A publish to a broker (msg's publish targets): a producer span rather than a client's. */
  readonly publish: boolean;
}

/** A participant call's span and the trace context its transport carries (PROTOCOL.md 5.1, 5.2; @nest-dtx/protocol trace-context.ts). */
export interface CallTrace {
  readonly span?: Span;
  readonly headers?: TraceContextHeaders;
}

const NO_CALL_TRACE: CallTrace = {};

/**
 * Starts the span of one participant call, `dtx.call <participant> <action>/<phase>`, under the
 * transaction's trace, and says what its transport carries: the span's own context, so the
 * participant's spans are its children. Off: the transaction's stored traceparent, carried as is.
 */
export function startCall(call: CallDescription): CallTrace {
  if (!tracesOn) return call.tx.traceParent === null ? NO_CALL_TRACE : { headers: { traceparent: call.tx.traceParent } };
  const parent = transactionContext(call.tx.traceParent);
  const unsampled = unsampledParent(parent);
  if (unsampled) return { headers: headersOf(unsampled) };
  const attributes: Attributes = {
    'dtx.gid': call.tx.gid,
    'dtx.branch_id': call.branchId,
    'dtx.mode': call.mode,
    'dtx.participant': call.participant,
    'dtx.action': call.action,
    'dtx.phase': call.phase,
    'dtx.attempt': call.attempt,
    'dtx.transport': call.transport,
  };
  if (call.transport === 'http') {
    attributes['http.request.method'] = 'POST';
  } else if (call.transport === 'rabbitmq' || call.transport === 'nats') {
    attributes['messaging.system'] = call.transport;
    attributes['messaging.operation.type'] = 'send';
    attributes['messaging.destination.name'] = call.publish ? call.action : call.participant;
  }
  const span = tracer.startSpan(
    `dtx.call ${call.participant} ${call.action}/${call.phase}`,
    { kind: call.publish ? SpanKind.PRODUCER : SpanKind.CLIENT, attributes },
    parent,
  );
  return { span, headers: headersOf(span.spanContext()) };
}

/** Ends a call's span with its outcome: a refusal (409) or a transient failure is an error; `ongoing` (202) is not. */
export function endCall(trace: CallTrace, outcome: CallOutcome, extra?: Attributes): void {
  const { span } = trace;
  if (!span) return;
  span.setAttribute('dtx.outcome', outcome.kind);
  if (extra) span.setAttributes(extra);
  if (outcome.kind === 'failed' || outcome.kind === 'transient') {
    const message = typeof outcome.error === 'string' ? outcome.error : JSON.stringify(outcome.error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: message.slice(0, 500) });
  }
  span.end();
}

/** Runs `work` with a call's span active (the log lines and metrics of the call name it). */
export function inCall<T>(call: CallTrace, work: () => T): T {
  if (!call.span) return work();
  return context.with(trace.setSpan(context.active(), call.span), work);
}

// ---- recovery and the log's writes -------------------------------------------------------------

/** A recovery pass that claimed transactions: one span, from before its claim; each recovery links to it. */
export function recoveryPass(startedAt: number, claimed: number): Span | undefined {
  if (!tracesOn || claimed === 0) return undefined;
  const span = tracer.startSpan('dtx.recovery.pass', { root: true, startTime: startedAt, attributes: { 'dtx.recovery.claimed': claimed } });
  return span;
}

/**
 * Runs a batch of writes to the log in a span `dtx.store.write` (one statement, one commit):
 * a child of the first transaction's work it carries, linked to every one's, so the write shows
 * in each transaction's trace. `carried`: the span contexts the writes were submitted in.
 */
export function inWriteBatch<T>(carried: readonly (SpanContext | undefined)[], kinds: readonly string[], work: () => Promise<T>): Promise<T> {
  if (!tracesOn) return work();
  // Only the sampled transactions' writes are recorded (see unsampledParent).
  const links: Link[] = [];
  for (const spanContext of carried) if (spanContext && spanContext.traceFlags & TraceFlags.SAMPLED) links.push({ context: spanContext });
  if (links.length === 0) return work();
  const parent = trace.setSpanContext(ROOT_CONTEXT, links[0].context);
  const span = tracer.startSpan(
    'dtx.store.write',
    {
      kind: SpanKind.CLIENT,
      links: links.length > 1 ? links.slice(1) : undefined,
      attributes: {
        'db.system.name': 'postgresql',
        'db.operation.name': 'WITH',
        'db.operation.batch.size': carried.length,
        'dtx.write.kinds': [...new Set(kinds)].join(','),
      },
    },
    parent,
  );
  return runInSpan(span, parent, work);
}

/** Runs `work` with `span` active under `parent`, and ends the span: an error when the work failed (rethrown). */
function runInSpan<T>(span: Span, parent: Context, work: () => Promise<T>): Promise<T> {
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await work();
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}
