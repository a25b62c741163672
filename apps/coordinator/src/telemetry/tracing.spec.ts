import { Writable } from 'node:stream';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JsonLogger } from '../logging/json-logger.js';
import { telemetrySettings } from './telemetry-sdk.js';
import { traceIdOf, traceParentOf } from './trace-parent.js';
import {
  activeSpanContext,
  beginTrace,
  begun,
  endCall,
  inBeginTrace,
  inTransactionSpan,
  inWriteBatch,
  setTracingOn,
  startCall,
  transactionEnded,
  type CallDescription,
} from './tracing.js';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_PARENT = `00-${CLIENT_TRACE}-00f067aa0ba902b7-01`;
const STORED = `00-${CLIENT_TRACE}-1111111111111111-01`;

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });

const tx = { gid: 'g1', mode: 'tcc' as const, traceParent: STORED };
const call = (overrides: Partial<CallDescription> = {}): CallDescription => ({
  tx,
  branchId: 'b1',
  participant: 'bank',
  action: 'debit',
  phase: 'try',
  mode: 'tcc',
  attempt: 1,
  transport: 'http',
  publish: false,
  ...overrides,
});
const finished = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);

describe('telemetrySettings (the standard OTEL_* variables)', () => {
  it('is off by default, and on with an OTLP endpoint for both signals', () => {
    expect(telemetrySettings({})).toEqual({ traces: false, metrics: false });
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toEqual({ traces: true, metrics: true });
  });

  it('turns on one signal with its own endpoint or exporter, and off with none or OTEL_SDK_DISABLED', () => {
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://x/v1/traces' })).toEqual({ traces: true, metrics: false });
    expect(telemetrySettings({ OTEL_METRICS_EXPORTER: 'console' })).toEqual({ traces: false, metrics: true });
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x', OTEL_METRICS_EXPORTER: 'none' })).toEqual({ traces: true, metrics: false });
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x', OTEL_SDK_DISABLED: 'TRUE' })).toEqual({ traces: false, metrics: false });
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toEqual({ traces: false, metrics: false });
  });
});

describe('with tracing off', () => {
  it('keeps the client\'s traceparent when well formed, makes no span, and carries the stored one on calls', async () => {
    expect(beginTrace('tcc', { traceparent: CLIENT_PARENT })).toEqual({ traceParent: CLIENT_PARENT });
    expect(beginTrace('tcc', { traceparent: '00-nope' })).toEqual({ traceParent: null });
    expect(startCall(call())).toEqual({ headers: { traceparent: STORED } });
    expect(startCall(call({ tx: { ...tx, traceParent: null } }))).toEqual({});
    expect(await inTransactionSpan('dtx.commit', tx, () => Promise.resolve(7))).toBe(7);
    expect(activeSpanContext()).toBeUndefined();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('with tracing on', () => {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    setTracingOn(true);
  });
  afterEach(() => exporter.reset());
  afterAll(async () => {
    setTracingOn(false);
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('begins the transaction\'s span under the client\'s context and keeps its traceparent; it ends when the transaction does', async () => {
    const begin = beginTrace('tcc', { traceparent: CLIENT_PARENT });
    expect(traceIdOf(begin.traceParent)).toBe(CLIENT_TRACE);
    expect(begin.traceParent).not.toBe(CLIENT_PARENT);
    // The begin's work runs in the span: what it logs and writes names it.
    const inside = await inBeginTrace(begin, () => Promise.resolve(activeSpanContext()));
    expect(traceParentOf(inside!)).toBe(begin.traceParent);
    begun(begin, 'g1', { created: true, status: 'active' });
    expect(finished('dtx.transaction tcc')).toEqual([]);
    transactionEnded('g1', 'committed');
    const [span] = finished('dtx.transaction tcc');
    expect(span.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.attributes).toMatchObject({ 'dtx.gid': 'g1', 'dtx.mode': 'tcc', 'dtx.status': 'committed' });
    // Heard again (another instance's message): nothing more.
    transactionEnded('g1', 'committed');
    expect(finished('dtx.transaction tcc')).toHaveLength(1);
  });

  it('ends a repeated begin\'s span at once, and starts a new trace for a client without one', () => {
    const repeated = beginTrace('saga', {});
    begun(repeated, 'g2', { created: false, status: 'active' });
    const [span] = finished('dtx.transaction saga');
    expect(span.attributes['dtx.begin.repeated']).toBe(true);
    expect(span.parentSpanContext).toBeUndefined();
  });

  it('makes a call\'s span under the stored traceparent, carries its own context, and ends it with the outcome', () => {
    const traced = startCall(call({ attempt: 2 }));
    const spanContext = traced.span!.spanContext();
    expect(traced.headers).toEqual({ traceparent: `00-${CLIENT_TRACE}-${spanContext.spanId}-01` });
    endCall(traced, { kind: 'transient', error: 'HTTP 503' });
    const [span] = finished('dtx.call bank debit/try');
    expect(span.parentSpanContext?.spanId).toBe('1111111111111111');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toMatchObject({ 'dtx.attempt': 2, 'http.request.method': 'POST', 'dtx.outcome': 'transient', 'dtx.participant': 'bank' });
    expect(span.status).toEqual({ code: 2, message: 'HTTP 503' });
  });

  it('makes a publish target\'s call a producer span with the messaging attributes', () => {
    const traced = startCall(call({ transport: 'rabbitmq', publish: true, action: 'order-placed', phase: 'execute', mode: 'msg' }));
    endCall(traced, { kind: 'ok', result: null });
    const [span] = finished('dtx.call bank order-placed/execute');
    expect(span.kind).toBe(SpanKind.PRODUCER);
    expect(span.attributes).toMatchObject({ 'messaging.system': 'rabbitmq', 'messaging.destination.name': 'order-placed', 'messaging.operation.type': 'send' });
    expect(span.status.code).toBe(0);
  });

  it('puts work on a stored transaction in a span under it, and a call made there under that span', async () => {
    await inTransactionSpan('dtx.commit', tx, () => {
      endCall(startCall(call({ phase: 'confirm' })), { kind: 'ok', result: null });
      return Promise.resolve();
    });
    const [commit] = finished('dtx.commit');
    const [confirm] = finished('dtx.call bank debit/confirm');
    expect(commit.parentSpanContext?.spanId).toBe('1111111111111111');
    expect(confirm.parentSpanContext?.spanId).toBe(commit.spanContext().spanId);
  });

  it('marks a span whose work failed as an error, and rethrows', async () => {
    await expect(inTransactionSpan('dtx.recover', tx, () => Promise.reject(new Error('store away')))).rejects.toThrow('store away');
    expect(finished('dtx.recover')[0].status).toEqual({ code: 2, message: 'store away' });
  });

  it('writes a batch in a span under the first transaction it carries, linked to the others', async () => {
    const a = { traceId: 'a'.repeat(32), spanId: 'a'.repeat(16), traceFlags: 1 };
    const b = { traceId: 'b'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 };
    expect(await inWriteBatch([a, undefined, b], ['apply', 'apply', 'insert'], () => Promise.resolve('written'))).toBe('written');
    const [write] = finished('dtx.store.write');
    expect(write.spanContext().traceId).toBe(a.traceId);
    expect(write.links.map((l) => l.context.spanId)).toEqual([b.spanId]);
    expect(write.attributes).toMatchObject({ 'db.system.name': 'postgresql', 'db.operation.batch.size': 3, 'dtx.write.kinds': 'apply,insert' });
  });

  it('makes no span in a trace that is not sampled, and carries its context on as it is', async () => {
    const unsampled = { ...tx, traceParent: `00-${CLIENT_TRACE}-2222222222222222-00` };
    const traced = startCall(call({ tx: unsampled }));
    expect(traced).toEqual({ headers: { traceparent: unsampled.traceParent } });
    const inside = await inTransactionSpan('dtx.commit', unsampled, () => Promise.resolve(activeSpanContext()));
    expect(inside).toMatchObject({ traceId: CLIENT_TRACE, spanId: '2222222222222222', traceFlags: 0 });
    const write = { traceId: 'c'.repeat(32), spanId: 'c'.repeat(16), traceFlags: 0 };
    expect(await inWriteBatch([write], ['apply'], () => Promise.resolve('written'))).toBe('written');
    // A begin the sampler leaves out is not held open either.
    const begin = beginTrace('tcc', { traceparent: `00-${CLIENT_TRACE}-00f067aa0ba902b7-00` });
    begun(begin, 'g3', { created: true, status: 'active' });
    expect(begin.traceParent?.endsWith('-00')).toBe(true);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('gives a JSON log line written inside a span its trace_id and span_id, and none outside', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const logger = new JsonLogger({ level: 'log', instance: 'i1', destination });
    let inside: string | undefined;
    await inTransactionSpan('dtx.commit', tx, () => {
      inside = activeSpanContext()?.spanId;
      logger.log({ msg: 'decided', gid: 'g1' }, 'Engine');
      return Promise.resolve();
    });
    logger.log('outside', 'Engine');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines[0]).toMatchObject({ msg: 'decided', gid: 'g1', trace_id: CLIENT_TRACE, span_id: inside, trace_flags: '01' });
    expect(lines[1].trace_id).toBeUndefined();
  });
});
