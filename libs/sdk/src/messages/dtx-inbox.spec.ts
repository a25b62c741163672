import { randomBytes } from 'node:crypto';
import type { JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { formatSigningSecret, signCall, type Json, type PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import { finalAnswer } from '../data-layers/core/ongoing-answer.js';
import { BusinessFailure } from '../data-layers/core/business-failure.js';
import type { BusinessWork, DtxDataLayer } from '../data-layers/core/data-layer.js';
import { BranchBarrier } from '../participant/barrier.js';
import { SigningKeys } from '../participant/signing-keys.js';
import { amqpInboxMessage, natsInboxMessage } from './broker-messages.js';
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

  it('amqplib: the content as it arrived and the three headers, whether the table holds strings or byte arrays', async () => {
    const delivery = {
      content: Buffer.from(body),
      fields: {},
      properties: { headers: { 'webhook-id': signed['webhook-id'], 'Webhook-Timestamp': Buffer.from(signed['webhook-timestamp']), 'webhook-signature': signed['webhook-signature'], other: 1 } },
    } as unknown as ConsumeMessage;
    const message = amqpInboxMessage(delivery);
    expect(message).toEqual({ body: Buffer.from(body), headers: signed });
    expect(await inbox().inbox.receive(message, () => Promise.resolve(null))).toMatchObject({ gid: 'g7', duplicate: false });
  });

  it('NATS JetStream: the data as it arrived and the three headers; an absent one is absent', () => {
    const headers = natsHeaders();
    for (const [name, value] of Object.entries(signed)) headers.set(name, value);
    // Data that is a view into a larger buffer, as a client may hand it over.
    const framed = Buffer.concat([Buffer.from('xxxx'), Buffer.from(body), Buffer.from('yyyy')]);
    const delivery = { data: new Uint8Array(framed.buffer, framed.byteOffset + 4, Buffer.byteLength(body)), headers } as unknown as JsMsg;
    expect(natsInboxMessage(delivery)).toEqual({ body: Buffer.from(body), headers: signed });
    const bare = { data: new Uint8Array(Buffer.from(body)), headers: undefined } as unknown as JsMsg;
    expect(natsInboxMessage(bare).headers).toEqual({ 'webhook-id': undefined, 'webhook-timestamp': undefined, 'webhook-signature': undefined });
  });

  it('takes the client libraries\' own types (checked by the compiler)', () => {
    const fromAmqp: (delivery: ConsumeMessage) => InboxMessage = amqpInboxMessage;
    const fromNats: (delivery: JsMsg) => InboxMessage = natsInboxMessage;
    expect([fromAmqp, fromNats]).toHaveLength(2);
  });
});
