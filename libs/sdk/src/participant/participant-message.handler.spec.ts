import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { firstValueFrom } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PhaseCallBody, PresentedSignatureHeaders } from '@nest-dtx/protocol';
import { REMOTE_PARENT, startTracing, type TestTracing } from '../../../../test/support/tracing.js';
import { CallSources } from '../tracing/handle-span.js';
import type { BranchDispatcher, DispatchAnswer } from './branch-dispatcher.js';
import type { CallCheck, CallVerifier } from './call-verifier.js';
import { participantError, ParticipantErrorCode } from './participant-errors.js';
import { ParticipantMessageHandler } from './participant-message.handler.js';

const call: PhaseCallBody = { gid: 'g1', branchId: 'b1', mode: 'saga', action: 'credit', phase: 'execute', payload: { amount: 5 } };

/** A verifier that passes what is signed `good` (the signature itself is CallVerifier's, tested elsewhere). */
const verifier = {
  check: (headers: PresentedSignatureHeaders, signed: string): CallCheck =>
    headers['webhook-signature'] === 'good' ? { ok: true, body: JSON.parse(signed) } : { ok: false, error: participantError(ParticipantErrorCode.INVALID, 'no signature matches') },
} as unknown as CallVerifier;

/** The data of a call as the coordinator sends it on TCP or Redis: the body, and `headers` with the signature and the trace context. */
const data = (signature: string, trace: Record<string, string> = { traceparent: REMOTE_PARENT.traceparent }) => ({
  ...call,
  headers: { 'webhook-id': 'g1/b1/execute', 'webhook-timestamp': '1', 'webhook-signature': signature, ...trace },
});

describe('ParticipantMessageHandler spans', () => {
  let tracing: TestTracing;
  /** What the dispatcher saw as the active span, and what it answers (or throws). */
  let activeInDispatch: string | undefined;
  let answer: () => Promise<DispatchAnswer>;
  const dispatcher = {
    dispatch: () => {
      activeInDispatch = trace.getActiveSpan()?.spanContext().spanId;
      return answer();
    },
  } as unknown as BranchDispatcher;
  const handler = new ParticipantMessageHandler(verifier, dispatcher);

  beforeEach(() => {
    tracing = startTracing();
    activeInDispatch = undefined;
  });
  afterEach(() => tracing.stop());

  it('a verified call: under the coordinator\'s call, active while dispatched, with the call\'s ids and outcome', async () => {
    answer = () => Promise.resolve({ kind: 'ok', result: { credited: 5 } });
    expect(await firstValueFrom(await handler.handle(data('good'), CallSources.tcp()))).toEqual({ outcome: 'ok', result: { credited: 5 } });
    const span = tracing.span('dtx.handle credit/execute');
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.parentSpanContext).toMatchObject({ traceId: REMOTE_PARENT.traceId, spanId: REMOTE_PARENT.spanId });
    expect(activeInDispatch).toBe(span.spanContext().spanId);
    expect(span.attributes).toMatchObject({ 'dtx.gid': 'g1', 'dtx.branch_id': 'b1', 'dtx.mode': 'saga', 'dtx.outcome': 'ok', 'dtx.transport': 'tcp' });
  });

  it('a business refusal is failed, an ongoing answer ongoing', async () => {
    answer = () => Promise.resolve({ kind: 'failed', message: 'insufficient funds', details: null });
    expect(await firstValueFrom(await handler.handle(data('good'), CallSources.redis()))).toEqual({ outcome: 'failed', message: 'insufficient funds' });
    answer = () => Promise.resolve({ kind: 'ongoing', retryAfterMs: 10 });
    expect(await firstValueFrom(await handler.handle(data('good', {}), CallSources.redis()))).toEqual({ outcome: 'ongoing', retryAfterMs: 10 });
    const [failed, ongoing] = tracing.spans();
    expect(failed.attributes).toMatchObject({ 'dtx.outcome': 'failed', 'error.type': 'BUSINESS_FAILURE' });
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    expect(ongoing.attributes).toMatchObject({ 'dtx.outcome': 'ongoing' });
    expect(ongoing.status.code).toBe(SpanStatusCode.UNSET);
    // No traceparent: a trace of its own.
    expect(ongoing.parentSpanContext).toBeUndefined();
  });

  it('a refused signature: a span with no id of the unverified body, refused, and nothing dispatched', async () => {
    answer = () => Promise.reject(new Error('must not run'));
    await expect(firstValueFrom(await handler.handle(data('forged'), CallSources.tcp()))).rejects.toMatchObject({ statusCode: 401, error: 'SIGNATURE_INVALID' });
    const span = tracing.span('dtx.handle');
    expect(activeInDispatch).toBeUndefined();
    expect(span.parentSpanContext?.spanId).toBe(REMOTE_PARENT.spanId);
    expect(span.attributes).toEqual({ 'dtx.transport': 'tcp', 'network.transport': 'tcp', 'dtx.outcome': 'refused', 'error.type': 'SIGNATURE_INVALID' });
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a dispatcher that throws: error, with the exception; a transient refusal of the dispatcher: error with its code', async () => {
    answer = () => Promise.reject(new Error('the database went away'));
    await expect(firstValueFrom(await handler.handle(data('good'), CallSources.tcp()))).rejects.toEqual({ status: 'error', message: 'Internal server error' });
    answer = () => Promise.resolve({ kind: 'schema_missing', message: 'dtx_barrier is missing' });
    await expect(firstValueFrom(await handler.handle(data('good'), CallSources.tcp()))).rejects.toMatchObject({ statusCode: 503 });
    const [thrown, missing] = tracing.spans();
    expect(thrown.attributes).toMatchObject({ 'dtx.outcome': 'error', 'error.type': 'INTERNAL', 'dtx.gid': 'g1' });
    expect(thrown.events.map((event) => event.attributes?.['exception.message'])).toEqual(['the database went away']);
    expect(missing.attributes).toMatchObject({ 'dtx.outcome': 'error', 'error.type': 'DTX_SCHEMA_MISSING' });
    expect(tracing.spans()).toHaveLength(2);
  });
});
