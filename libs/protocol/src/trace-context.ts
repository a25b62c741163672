import { MESSAGE_SIGNATURE_MEMBER } from './signing.js';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) on every transport. The coordinator
 * sends the context of its call (or, with tracing off, the one the client began the transaction
 * with) under these two names:
 * - HTTP (PROTOCOL.md 5.1): as headers;
 * - TCP, Redis, RabbitMQ and NATS request/reply (5.2): in the message's `headers` member, beside
 *   the three signature values (it is not signed: the signature covers the body only), and on
 *   RabbitMQ and NATS as the message's own headers as well;
 * - RabbitMQ and NATS publish targets: as the message's own headers, beside the signature's.
 */
export const TRACE_CONTEXT_HEADERS = ['traceparent', 'tracestate'] as const;

export type TraceContextHeader = (typeof TRACE_CONTEXT_HEADERS)[number];

/** The trace context of one call: none, a `traceparent`, or both. */
export type TraceContextHeaders = Partial<Record<TraceContextHeader, string>>;

/** The trace context a message-transport call carries in its `headers` member (none when it has none). */
export function messageTraceHeaders(data: unknown): TraceContextHeaders {
  const found: TraceContextHeaders = {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return found;
  const headers = (data as Record<string, unknown>)[MESSAGE_SIGNATURE_MEMBER];
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return found;
  for (const name of TRACE_CONTEXT_HEADERS) {
    const value = (headers as Record<string, unknown>)[name];
    if (typeof value === 'string' && value.length > 0) found[name] = value;
  }
  return found;
}
