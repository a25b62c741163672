import { TraceFlags, type SpanContext } from '@opentelemetry/api';

/**
 * W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header): version 00, a
 * trace id and a parent id that are not all zeros, and the flags. Written by us and by clients;
 * an invalid one is ignored, as the W3C asks.
 */
const TRACEPARENT = /^([0-9a-f]{2})-((?!0{32})[0-9a-f]{32})-((?!0{16})[0-9a-f]{16})-([0-9a-f]{2})$/;

/** Whether `value` is a well-formed traceparent (a transaction keeps only such a one). */
export function isTraceParent(value: string | undefined | null): value is string {
  return typeof value === 'string' && TRACEPARENT.test(value) && !value.startsWith('ff');
}

/** The span context a stored traceparent names (remote: it was made by another process, or an earlier one); null when malformed. */
export function spanContextOf(traceParent: string): SpanContext | null {
  const match = TRACEPARENT.exec(traceParent);
  if (!match || match[1] === 'ff') return null;
  return { traceId: match[2], spanId: match[3], traceFlags: parseInt(match[4], 16) & TraceFlags.SAMPLED, isRemote: true };
}

/** A span context as the traceparent that makes another process's span its child. */
export function traceParentOf(context: SpanContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
}

/** The 32 hex digits of a traceparent's trace id (what trace UIs look a trace up by); null when malformed. */
export function traceIdOf(traceParent: string | null): string | null {
  if (traceParent === null) return null;
  const match = TRACEPARENT.exec(traceParent);
  return match ? match[2] : null;
}
