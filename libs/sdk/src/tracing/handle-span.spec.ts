import { SpanKind, SpanStatusCode, trace, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';
import * as semconv from '@opentelemetry/semantic-conventions';
import * as incubating from '@opentelemetry/semantic-conventions/incubating';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import { REMOTE_PARENT, startTracing, type TestTracing } from '../../../../test/support/tracing.js';
import { participantError, ParticipantErrorCode } from '../participant/participant-errors.js';
import { SDK_TRACER_NAME, SemconvAttr } from './dtx-tracer.js';
import { answerResult, CallSources, errorBodyResult, HandleSpan, traceHeadersOf } from './handle-span.js';

const call: PhaseCallBody = { gid: 'g1', branchId: 'b1', mode: 'tcc', action: 'debit', phase: 'try', payload: { amount: 5 } };

describe('the semantic-convention names the SDK writes out', () => {
  it('are the ones of @opentelemetry/semantic-conventions', () => {
    expect(SemconvAttr).toEqual({
      ERROR_TYPE: semconv.ATTR_ERROR_TYPE,
      HTTP_REQUEST_METHOD: semconv.ATTR_HTTP_REQUEST_METHOD,
      HTTP_RESPONSE_STATUS_CODE: semconv.ATTR_HTTP_RESPONSE_STATUS_CODE,
      HTTP_ROUTE: semconv.ATTR_HTTP_ROUTE,
      URL_FULL: semconv.ATTR_URL_FULL,
      NETWORK_TRANSPORT: semconv.ATTR_NETWORK_TRANSPORT,
      MESSAGING_SYSTEM: incubating.ATTR_MESSAGING_SYSTEM,
      MESSAGING_DESTINATION_NAME: incubating.ATTR_MESSAGING_DESTINATION_NAME,
      MESSAGING_CONSUMER_GROUP_NAME: incubating.ATTR_MESSAGING_CONSUMER_GROUP_NAME,
      MESSAGING_OPERATION_TYPE: incubating.ATTR_MESSAGING_OPERATION_TYPE,
    });
    expect(CallSources.rabbitmq('q').attributes[SemconvAttr.MESSAGING_SYSTEM]).toBe(incubating.MESSAGING_SYSTEM_VALUE_RABBITMQ);
    expect(CallSources.rabbitmq('q').attributes[SemconvAttr.MESSAGING_OPERATION_TYPE]).toBe(incubating.MESSAGING_OPERATION_TYPE_VALUE_PROCESS);
    expect(CallSources.tcp().attributes[SemconvAttr.NETWORK_TRANSPORT]).toBe(semconv.NETWORK_TRANSPORT_VALUE_TCP);
  });
});

describe('outcomes', () => {
  it('maps every dispatcher answer and error body to what the participant answered', () => {
    expect(answerResult({ kind: 'ok', result: null })).toEqual({ outcome: 'ok' });
    expect(answerResult({ kind: 'ongoing' })).toEqual({ outcome: 'ongoing' });
    expect(answerResult({ kind: 'failed', message: 'no', details: null })).toEqual({ outcome: 'failed', errorType: 'BUSINESS_FAILURE' });
    expect(answerResult({ kind: 'invalid', message: 'no' })).toEqual({ outcome: 'refused', errorType: 'INVALID_PHASE_CALL' });
    expect(answerResult({ kind: 'schema_missing', message: 'no' })).toEqual({ outcome: 'error', errorType: 'DTX_SCHEMA_MISSING' });
    expect(answerResult({ kind: 'ongoing_not_supported', message: 'no' })).toEqual({ outcome: 'error', errorType: 'ONGOING_NOT_SUPPORTED' });
    expect(errorBodyResult(participantError(ParticipantErrorCode.INVALID, 'x'))).toEqual({ outcome: 'refused', errorType: 'SIGNATURE_INVALID' });
    expect(errorBodyResult(participantError(ParticipantErrorCode.BUSINESS_FAILURE, 'x'))).toEqual({ outcome: 'failed', errorType: 'BUSINESS_FAILURE' });
    expect(errorBodyResult(participantError(ParticipantErrorCode.INTERNAL, 'x'))).toEqual({ outcome: 'error', errorType: 'INTERNAL' });
  });

  it('reads the two trace headers, the first of a repeated one, and nothing else', () => {
    expect(traceHeadersOf({ traceparent: 'a', tracestate: ['b', 'c'], 'webhook-id': 'x' })).toStrictEqual({ traceparent: 'a', tracestate: 'b' });
    expect(traceHeadersOf({ traceparent: '', other: 'x' })).toStrictEqual({});
  });
});

describe('HandleSpan with an OpenTelemetry SDK registered', () => {
  let tracing: TestTracing;
  beforeEach(() => {
    tracing = startTracing();
  });
  afterEach(async () => {
    await tracing.stop();
  });

  it('is a child of the remote caller, named after the verified call, and the parent of what runs in it', async () => {
    const span = HandleSpan.start(CallSources.tcp(), { traceparent: REMOTE_PARENT.traceparent, tracestate: 'dtx=1' });
    span.identify(call);
    const inside = await span.run(() => trace.getTracer('business').startActiveSpan('business', (business) => {
      business.end();
      return Promise.resolve(business.spanContext());
    }));
    span.end({ outcome: 'ok' });
    const handled = tracing.span('dtx.handle debit/try');
    expect(handled.kind).toBe(SpanKind.SERVER);
    expect(handled.instrumentationScope.name).toBe(SDK_TRACER_NAME);
    expect(handled.spanContext().traceId).toBe(REMOTE_PARENT.traceId);
    expect(handled.parentSpanContext).toMatchObject({ traceId: REMOTE_PARENT.traceId, spanId: REMOTE_PARENT.spanId, isRemote: true });
    expect(handled.spanContext().traceState?.get('dtx')).toBe('1');
    expect(handled.attributes).toEqual({
      'dtx.transport': 'tcp',
      'network.transport': 'tcp',
      'dtx.gid': 'g1',
      'dtx.branch_id': 'b1',
      'dtx.mode': 'tcc',
      'dtx.action': 'debit',
      'dtx.phase': 'try',
      'dtx.outcome': 'ok',
    });
    expect(handled.status.code).toBe(SpanStatusCode.UNSET);
    const business = tracing.span('business');
    expect(business.parentSpanContext?.spanId).toBe(handled.spanContext().spanId);
    expect(inside.traceId).toBe(REMOTE_PARENT.traceId);
    // Outside run, the handle span is not active.
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  it('starts a trace of its own for a call without a traceparent', () => {
    HandleSpan.start(CallSources.redis(), {}).end({ outcome: 'ok' });
    const handled = tracing.span('dtx.handle');
    expect(handled.parentSpanContext).toBeUndefined();
    expect(handled.spanContext().traceId).not.toBe(REMOTE_PARENT.traceId);
  });

  it('keeps the bare name and no id from an unverified body when refused, with an error status and the code as error.type', () => {
    const span = HandleSpan.start(CallSources.rabbitmq('dtx.participant.x'), { traceparent: REMOTE_PARENT.traceparent });
    span.end(errorBodyResult(participantError(ParticipantErrorCode.INVALID, 'no')));
    const refused = tracing.span('dtx.handle');
    expect(refused.kind).toBe(SpanKind.CONSUMER);
    expect(refused.attributes).toEqual({
      'dtx.transport': 'rabbitmq',
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'dtx.participant.x',
      'dtx.outcome': 'refused',
      'error.type': 'SIGNATURE_INVALID',
    });
    expect(refused.status).toEqual({ code: SpanStatusCode.ERROR, message: 'SIGNATURE_INVALID' });
  });

  it('records what was thrown, and ends once', () => {
    const span = HandleSpan.start(CallSources.nats('tx.branch.x', 'dtx.x'), {});
    span.identify(call);
    span.end({ outcome: 'error', errorType: 'INTERNAL' }, new Error('the ledger exploded'));
    span.end({ outcome: 'ok' });
    const [errored] = tracing.spans();
    expect(tracing.spans()).toHaveLength(1);
    expect(errored.attributes).toMatchObject({ 'dtx.outcome': 'error', 'error.type': 'INTERNAL', 'messaging.consumer.group.name': 'dtx.x', 'messaging.system': 'nats' });
    expect(errored.status.code).toBe(SpanStatusCode.ERROR);
    expect(errored.events.map((event) => [event.name, event.attributes?.['exception.message']])).toEqual([['exception', 'the ledger exploded']]);
  });
});

describe('HandleSpan without an OpenTelemetry SDK', () => {
  afterEach(() => {
    trace.disable();
  });

  it('runs the work and sets nothing on the API\'s non-recording span', async () => {
    const span = HandleSpan.start(CallSources.http('/tx/:action/:phase'), { traceparent: REMOTE_PARENT.traceparent });
    span.identify(call);
    expect(await span.run(() => Promise.resolve(42))).toBe(42);
    span.end({ outcome: 'failed', errorType: 'BUSINESS_FAILURE' }, new Error('x'));
    // No context manager either: nothing is active, inside or out.
    expect(await span.run(() => Promise.resolve(trace.getActiveSpan()))).toBeUndefined();
  });

  it('asks a span that does not record only whether it records, and ends it', () => {
    const spy = { isRecording: vi.fn(() => false), end: vi.fn(), setAttribute: vi.fn(), setAttributes: vi.fn(), updateName: vi.fn(), setStatus: vi.fn(), recordException: vi.fn() };
    const tracer = { startSpan: () => spy as unknown as Span } as unknown as Tracer;
    const provider: TracerProvider = { getTracer: () => tracer };
    trace.setGlobalTracerProvider(provider);
    const span = HandleSpan.start(CallSources.http('/tx/:action/:phase'), { traceparent: REMOTE_PARENT.traceparent });
    span.identify(call);
    span.set(SemconvAttr.HTTP_RESPONSE_STATUS_CODE, 409);
    span.end({ outcome: 'failed', errorType: 'BUSINESS_FAILURE' }, new Error('x'));
    expect(spy.end).toHaveBeenCalledTimes(1);
    for (const write of [spy.setAttribute, spy.setAttributes, spy.updateName, spy.setStatus, spy.recordException]) expect(write).not.toHaveBeenCalled();
  });
});
