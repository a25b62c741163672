import { randomBytes } from 'node:crypto';
import type { JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { ConsumeMessage } from 'amqplib';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatSigningSecret, signCall, type Json, type PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import { finalAnswer } from '../data-layers/core/ongoing-answer.js';
import { BusinessFailure } from '../data-layers/core/business-failure.js';
import type { BusinessWork, DtxDataLayer } from '../data-layers/core/data-layer.js';
import { BranchBarrier } from '../participant/barrier.js';
import { SigningKeys } from '../participant/signing-keys.js';
import { amqpInboxMessage, natsInboxMessage } from './broker-messages.js';
import { REMOTE_PARENT, startTracing, type TestTracing } from '../../../../test/support/tracing.js';
import { DtxInbox, DtxInboxError, type InboxMessage } from './dtx-inbox.js';

/** Phase 1 of the barrier in memory, one call at a time: a branch's first run keeps its result, a repeat replays it. */
class MemoryPhase1Layer implements DtxDataLayer<{ handle: string }> {
  readonly description = 'memory';
  readonly done = new Map<string, Json>();

  async runPhase(call: PhaseCallBody, work: BusinessWork<{ handle: string }>): Promise<BarrierOutcome> {
    const key = `${call.gid}/${call.branchId}`;
    if (this.done.has(key)) return { kind: 'ok', result: this.done.get(key) ?? null, duplicate: true, skipped: true };
    try {
      const result = finalAnswer(await work({ handle: 'tx' }), 'XaAction');
      this.done.set(key, result);
      return { kind: 'ok', result, duplicate: false, skipped: false };
    } catch (error) {
      if (error instanceof BusinessFailure) return { kind: 'failed', message: error.message, details: error.details };
      throw error;
    }
  }

  deleteExpiredBarrierRows(): Promise<number> {
    return Promise.resolve(0);
  }
}

const key = randomBytes(32);
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const secret = formatSigningSecret(key);
const now = () => Math.floor(Date.now() / 1000);

const execute = (gid: string, branchId = 'b1', extra: Partial<PhaseCallBody> = {}): PhaseCallBody => ({
  gid,
  branchId,
  mode: 'msg',
  action: 'credit',
  phase: 'execute',
  payload: { accountId: 'alice', amount: 5 },
  ...extra,
});

/** A message as the coordinator publishes it: the JSON body, signed over its bytes with the target's secret. */
function published(body: PhaseCallBody | string, options: { id?: string; at?: number; keys?: Buffer[] } = {}): InboxMessage {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const id = options.id ?? (typeof body === 'string' ? 'g/b1/execute' : `${body.gid}/${body.branchId}/${body.phase}`);
  return { body: Buffer.from(text), headers: signCall(options.keys ?? [key], id, options.at ?? now(), text) };
}

function inbox(): { inbox: DtxInbox<{ handle: string }>; layer: MemoryPhase1Layer; runs: Json[] } {
  const layer = new MemoryPhase1Layer();
  return { inbox: new DtxInbox(layer, { signingSecret: secret }), layer, runs: [] };
}

describe('DtxInbox', () => {
  it('runs the work of a signed message once, in the layer\'s transaction; a redelivery is a duplicate with the first result', async () => {
    const { inbox: box, runs } = inbox();
    const message = published(execute('g1'));
    const work = (payload: Json, context: { gid: string; branchId: string; tx: { handle: string } }) => {
      runs.push({ payload, gid: context.gid, branchId: context.branchId, tx: context.tx });
      return Promise.resolve({ credited: 5 });
    };
    expect(await box.receive(message, work)).toEqual({ gid: 'g1', branchId: 'b1', duplicate: false, result: { credited: 5 } });
    expect(await box.receive(message, work)).toEqual({ gid: 'g1', branchId: 'b1', duplicate: true, result: { credited: 5 } });
    expect(runs).toEqual([{ payload: { accountId: 'alice', amount: 5 }, gid: 'g1', branchId: 'b1', tx: { handle: 'tx' } }]);
  });

  it.each([
    ['no signature headers', (): InboxMessage => ({ body: JSON.stringify(execute('g2')), headers: {} }), 'SIGNATURE_MISSING'],
    ['another secret', () => published(execute('g2'), { keys: [randomBytes(32)] }), 'SIGNATURE_INVALID'],
    ['a body changed after signing', () => ({ ...published(execute('g2')), body: JSON.stringify(execute('g2', 'b1', { payload: { accountId: 'alice', amount: 5000 } })) }), 'SIGNATURE_INVALID'],
    ['a timestamp older than the tolerance (7 days)', () => published(execute('g2'), { at: now() - 8 * 24 * 60 * 60 }), 'SIGNATURE_EXPIRED'],
    ['a webhook-id naming another branch', () => published(execute('g2'), { id: 'g2/b2/execute' }), 'INVALID_MESSAGE'],
    ['a call that is no msg execute', () => published(execute('g2', 'b1', { mode: 'saga' })), 'INVALID_MESSAGE'],
    ['the check-back\'s branchId', () => published(execute('g2', 'check')), 'INVALID_MESSAGE'],
    ['a body that is not JSON', () => published('{"gid":'), 'INVALID_JSON'],
  ])('refuses a message with %s: a DtxInboxError, and nothing runs', async (_what, make, code) => {
    const { inbox: box, layer } = inbox();
    let ran = false;
    const attempt = box.receive(make(), () => Promise.resolve(void (ran = true)));
    await expect(attempt).rejects.toBeInstanceOf(DtxInboxError);
    await expect(attempt).rejects.toMatchObject({ code });
    expect(ran).toBe(false);
    expect(layer.done.size).toBe(0);
  });

  it('takes a message that waited an hour in its queue (the 5 minutes of a call are no limit for a broker)', async () => {
    const { inbox: box } = inbox();
    expect(await box.receive(published(execute('g3'), { at: now() - 3600 }), () => Promise.resolve(null))).toMatchObject({ duplicate: false });
  });

  it('verifies with the keys a function gives at each message, and refuses once none matches', async () => {
    const layer = new MemoryPhase1Layer();
    let keys: Buffer[] = [key];
    const box = new DtxInbox(layer, { signingSecret: () => keys });
    await expect(box.receive(published(execute('g4')), () => Promise.resolve())).resolves.toMatchObject({ duplicate: false });
    keys = [];
    await expect(box.receive(published(execute('g5')), () => Promise.resolve())).rejects.toMatchObject({ code: 'SIGNATURE_NO_SECRET' });
  });

  it('comes from the participant module\'s barrier: on its data layer, verifying with the participant\'s own key unless given one', async () => {
    const layer = new MemoryPhase1Layer();
    const own = new SigningKeys({ signingSecret: secret });
    const barrier = new BranchBarrier(layer, { name: 'bank-b' }, own);
    expect(await barrier.inbox().receive(published(execute('g8')), () => Promise.resolve('ran'))).toMatchObject({ duplicate: false, result: 'ran' });
    expect(layer.done.has('g8/b1')).toBe(true);
    const other = randomBytes(32);
    await expect(barrier.inbox().receive(published(execute('g9'), { keys: [other] }), () => Promise.resolve())).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
    expect(await barrier.inbox({ signingSecret: formatSigningSecret(other) }).receive(published(execute('g9'), { keys: [other] }), () => Promise.resolve())).toMatchObject({ duplicate: false });
    expect(() => new BranchBarrier(layer).inbox()).toThrow('give a signingSecret');
  });

  it('refuses a malformed secret where the inbox is made', () => {
    expect(() => new DtxInbox(new MemoryPhase1Layer(), { signingSecret: 'not-a-secret' })).toThrow('a signing secret starts with whsec_');
  });

  it('gives back the work\'s BusinessFailure as thrown, keeping nothing: the redelivery runs it again', async () => {
    const { inbox: box } = inbox();
    const failure = new BusinessFailure('no account', { reason: 'no_account' });
    await expect(box.receive(published(execute('g6')), () => Promise.reject(failure))).rejects.toBe(failure);
    expect(await box.receive(published(execute('g6')), () => Promise.resolve('ok'))).toMatchObject({ duplicate: false, result: 'ok' });
  });
});

describe('broker deliveries as inbox messages', () => {
  const body = JSON.stringify(execute('g7'));
  const signed = signCall([key], 'g7/b1/execute', now(), body);

  it('amqplib: the content as it arrived, the three headers and the trace context, whether the table holds strings or byte arrays; the queue it came from', async () => {
    const delivery = {
      content: Buffer.from(body),
      fields: { routingKey: 'credits' },
      properties: {
        headers: { 'webhook-id': signed['webhook-id'], 'Webhook-Timestamp': Buffer.from(signed['webhook-timestamp']), 'webhook-signature': signed['webhook-signature'], traceparent: TRACEPARENT, other: 1 },
      },
    } as unknown as ConsumeMessage;
    const message = amqpInboxMessage(delivery);
    expect(message).toStrictEqual({
      body: Buffer.from(body),
      headers: { ...signed, traceparent: TRACEPARENT, tracestate: undefined },
      source: { system: 'rabbitmq', destination: 'credits' },
    });
    expect(await inbox().inbox.receive(message, () => Promise.resolve(null))).toMatchObject({ gid: 'g7', duplicate: false });
  });

  it('NATS JetStream: the data as it arrived, the three headers and the trace context, and its subject; an absent one is absent', () => {
    const headers = natsHeaders();
    for (const [name, value] of Object.entries(signed)) headers.set(name, value);
    headers.set('traceparent', TRACEPARENT);
    headers.set('tracestate', 'vendor=1');
    // Data that is a view into a larger buffer, as a client may hand it over.
    const framed = Buffer.concat([Buffer.from('xxxx'), Buffer.from(body), Buffer.from('yyyy')]);
    const delivery = { data: new Uint8Array(framed.buffer, framed.byteOffset + 4, Buffer.byteLength(body)), headers, subject: 'credits.eu' } as unknown as JsMsg;
    expect(natsInboxMessage(delivery)).toStrictEqual({
      body: Buffer.from(body),
      headers: { ...signed, traceparent: TRACEPARENT, tracestate: 'vendor=1' },
      source: { system: 'nats', destination: 'credits.eu' },
    });
    const bare = { data: new Uint8Array(Buffer.from(body)), headers: undefined } as unknown as JsMsg;
    expect(natsInboxMessage(bare)).toMatchObject({
      headers: { 'webhook-id': undefined, 'webhook-timestamp': undefined, 'webhook-signature': undefined, traceparent: undefined, tracestate: undefined },
      source: { system: 'nats', destination: undefined },
    });
  });

  it('takes the client libraries\' own types (checked by the compiler)', () => {
    const fromAmqp: (delivery: ConsumeMessage) => InboxMessage = amqpInboxMessage;
    const fromNats: (delivery: JsMsg) => InboxMessage = natsInboxMessage;
    expect([fromAmqp, fromNats]).toHaveLength(2);
  });
});

describe('DtxInbox spans', () => {
  let tracing: TestTracing;
  beforeEach(() => {
    tracing = startTracing();
  });
  afterEach(() => tracing.stop());

  /** A published message carrying the coordinator's trace context, as consumed from queue `credits`. */
  const traced = (body: PhaseCallBody): InboxMessage => {
    const message = published(body);
    return { ...message, headers: { ...message.headers, traceparent: REMOTE_PARENT.traceparent }, source: { system: 'rabbitmq', destination: 'credits' } };
  };

  it('a CONSUMER span under the coordinator\'s publish, active while the work runs, a duplicate said so', async () => {
    const { inbox: box } = inbox();
    let active: string | undefined;
    const work = () => {
      active = trace.getActiveSpan()?.spanContext().spanId;
      return Promise.resolve(null);
    };
    await box.receive(traced(execute('g20')), work);
    await box.receive(traced(execute('g20')), work);
    const [first, again] = tracing.spans();
    expect(first.name).toBe('dtx.handle credit/execute');
    expect(first.kind).toBe(SpanKind.CONSUMER);
    expect(first.parentSpanContext).toMatchObject({ traceId: REMOTE_PARENT.traceId, spanId: REMOTE_PARENT.spanId });
    expect(active).toBe(first.spanContext().spanId);
    expect(first.attributes).toEqual({
      'dtx.transport': 'inbox',
      'messaging.operation.type': 'process',
      'messaging.system': 'rabbitmq',
      'messaging.destination.name': 'credits',
      'dtx.gid': 'g20',
      'dtx.branch_id': 'b1',
      'dtx.mode': 'msg',
      'dtx.action': 'credit',
      'dtx.phase': 'execute',
      'dtx.duplicate': false,
      'dtx.outcome': 'ok',
    });
    expect(again.attributes).toMatchObject({ 'dtx.duplicate': true, 'dtx.outcome': 'ok' });
  });

  it('a forged message is refused with its code; a business failure is failed; a thrown error is an error', async () => {
    const { inbox: box } = inbox();
    const forged = { ...traced(execute('g21')), body: JSON.stringify(execute('g21', 'b1', { payload: { amount: 500 } })) };
    await expect(box.receive(forged, () => Promise.resolve(null))).rejects.toBeInstanceOf(DtxInboxError);
    await expect(box.receive(traced(execute('g22')), () => Promise.reject(new BusinessFailure('no such account')))).rejects.toBeInstanceOf(BusinessFailure);
    await expect(box.receive(traced(execute('g23')), () => Promise.reject(new RangeError('bad')))).rejects.toBeInstanceOf(RangeError);
    const [refused, failed, errored] = tracing.spans();
    expect(refused.name).toBe('dtx.handle');
    expect(refused.attributes).toMatchObject({ 'dtx.outcome': 'refused', 'error.type': 'SIGNATURE_INVALID' });
    expect(refused.attributes).not.toHaveProperty('dtx.gid');
    expect(failed.attributes).toMatchObject({ 'dtx.outcome': 'failed', 'error.type': 'BUSINESS_FAILURE', 'dtx.gid': 'g22' });
    expect(errored.attributes).toMatchObject({ 'dtx.outcome': 'error', 'error.type': 'RangeError', 'dtx.gid': 'g23' });
    for (const span of [refused, failed, errored]) expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });
});
