/**
 * Broker participants on the real coordinator process (docs/transports.md "RabbitMQ and NATS"):
 * - the registration rules: a broker transport on a coordinator without its URL is 400
 *   TRANSPORT_NOT_CONFIGURED (field `transport`); `publish` only with rabbitmq or nats (field
 *   `publish`), and then only mode msg (field `actions.<i>.modes`); a publish target cannot be a
 *   message's check;
 * - publish targets end to end: a submitted message is published to a RabbitMQ queue and a NATS
 *   JetStream subject, signed with the secret the registration handed out, and the transaction
 *   commits once both brokers confirmed; a message to a queue that does not exist yet is retried
 *   until the consumer declares it.
 */
import { randomBytes } from 'node:crypto';
import amqplib from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type ErrorBody, type ParticipantRegistrationView, type ParticipantView, type TransactionView } from '@nest-dtx/protocol';
import { NATS_URL, RABBITMQ_URL, REDIS_URL, coordinator, getJson, postJson, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

const run = randomBytes(3).toString('hex');
let databases: TestDatabase[] = [];
/** Started without RABBITMQ_URL and NATS_URL. */
let bare: CoordinatorHandle;
/** Started with both. */
let coord: CoordinatorHandle;
let amqp: ChannelModel;
let channel: Channel;
let nc: NatsConnection;
let jsm: JetStreamManager;

const queue = `dtx-e2e.${run}.order-placed`;
const lateQueue = `dtx-e2e.${run}.late`;
const stream = `DTX_E2E_${run}`;
const subject = `dtx-e2e.${run}.order-placed`;
const msgOnly = (name: string) => [{ name, modes: ['msg'] }];

const register = (target: CoordinatorHandle, body: object) => postJson<ParticipantRegistrationView & ErrorBody>(`${target.url}/v1/participants`, body);

beforeAll(async () => {
  databases = await Promise.all(['brokers_bare', 'brokers_coord'].map((p) => createTestDatabase(p)));
  bare = await coordinator('brokers-bare', databases[0].url, { LOG_LEVEL: 'warn' });
  coord = await coordinator('brokers-coordinator', databases[1].url, {
    REDIS_URL,
    RABBITMQ_URL,
    NATS_URL,
    RECOVERY_INTERVAL_MS: '200',
    RETRY_BASE_MS: '50',
    RETRY_MAX_MS: '300',
    LEASE_MS: '3000',
    CALL_TIMEOUT_MS: '1500',
  });
  await Promise.all([bare.start(), coord.start()]);
  amqp = await amqplib.connect(RABBITMQ_URL);
  channel = await amqp.createChannel();
  await channel.assertQueue(queue, { durable: true });
  nc = await natsConnect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`dtx-e2e.${run}.>`] });
});

afterAll(async () => {
  await Promise.all([bare?.process.kill(), coord?.process.kill()]);
  await channel?.deleteQueue(queue);
  await channel?.deleteQueue(lateQueue);
  await amqp?.close();
  await jsm?.streams.delete(stream).catch(() => undefined);
  await nc?.close();
  await Promise.all(databases.map((d) => d.drop()));
});

describe('registration of broker participants', () => {
  it('refuses rabbitmq and nats on a coordinator without RABBITMQ_URL / NATS_URL: 400 TRANSPORT_NOT_CONFIGURED, field transport', async () => {
    for (const [transport, variable] of [['rabbitmq', 'RABBITMQ_URL'], ['nats', 'NATS_URL']] as const) {
      for (const publish of [false, true]) {
        const answer = await register(bare, { name: `p-${transport}`, transport, publish, actions: msgOnly('a') });
        expect({ transport, publish, status: answer.status, error: answer.body.error, field: answer.body.field }).toEqual({
          transport,
          publish,
          status: 400,
          error: ErrorCode.TRANSPORT_NOT_CONFIGURED,
          field: 'transport',
        });
        expect(answer.body.message).toContain(variable);
      }
    }
    expect(await getJson<ParticipantView[]>(`${bare.url}/v1/participants`)).toEqual([]);
  });

  it('takes publish only with rabbitmq or nats (field publish), and only mode msg on its actions (field actions.<i>.modes)', async () => {
    const refusals: [object, string][] = [
      [{ name: 'p1', transport: 'http', endpoint: 'http://127.0.0.1:1/tx', publish: true, actions: msgOnly('a') }, 'publish'],
      [{ name: 'p2', transport: 'redis', publish: true, actions: msgOnly('a') }, 'publish'],
      [{ name: 'p3', transport: 'rabbitmq', publish: 'yes', actions: msgOnly('a') }, 'publish'],
      [{ name: 'p4', transport: 'rabbitmq', publish: true, actions: [{ name: 'a', modes: ['msg'] }, { name: 'b', modes: ['saga'] }] }, 'actions.1.modes'],
      [{ name: 'p5', transport: 'nats', publish: true, actions: [{ name: 'a', modes: ['msg', 'tcc'] }] }, 'actions.0.modes'],
      [{ name: 'p6', transport: 'nats', publish: true, actions: msgOnly('orders..placed') }, 'actions.0.name'],
      [{ name: 'p7.', transport: 'nats', actions: [{ name: 'debit', modes: ['tcc'] }] }, 'name'],
    ];
    for (const [body, field] of refusals) {
      const answer = await register(coord, body);
      expect({ body, status: answer.status, error: answer.body.error, field: answer.body.field }).toEqual({ body, status: 400, error: ErrorCode.VALIDATION_FAILED, field });
    }
    expect(await getJson<ParticipantView[]>(`${coord.url}/v1/participants`)).toEqual([]);
  });

  it('registers publish targets and request/reply participants of both brokers, and lists them with publish', async () => {
    for (const transport of ['rabbitmq', 'nats'] as const) {
      const answer = await register(coord, { name: `${transport}-bank-${run}`, transport, actions: [{ name: 'debit', modes: ['tcc', 'saga'] }] });
      expect(answer.status).toBe(201);
      expect(answer.body).toMatchObject({ transport, publish: false, endpoint: null, host: null, port: null, signingSecret: expect.stringMatching(/^whsec_/) });
    }
    const listed = await getJson<ParticipantView[]>(`${coord.url}/v1/participants`);
    expect(listed.map((p) => [p.name, p.transport, p.publish])).toEqual([
      [`nats-bank-${run}`, 'nats', false],
      [`rabbitmq-bank-${run}`, 'rabbitmq', false],
    ]);
  });
});

describe('publish targets', () => {
  let rabbitSecret: string;
  let natsSecret: string;

  beforeAll(async () => {
    const rabbit = await register(coord, { name: `queues-${run}`, transport: 'rabbitmq', publish: true, actions: [...msgOnly(queue), ...msgOnly(lateQueue)] });
    const nats = await register(coord, { name: `subjects-${run}`, transport: 'nats', publish: true, actions: msgOnly(subject) });
    // The caller's check action (never asked here: the messages are submitted at begin).
    const caller = await register(coord, { name: `shop-${run}`, transport: 'http', endpoint: 'http://127.0.0.1:1/tx', actions: msgOnly('dtx-msg-check') });
    expect([rabbit.status, nats.status, caller.status]).toEqual([201, 201, 201]);
    expect(rabbit.body.publish).toBe(true);
    rabbitSecret = rabbit.body.signingSecret;
    natsSecret = nats.body.signingSecret;
  });

  const submit = (gid: string, branches: { participant: string; action: string; payload: object }[]) =>
    postJson<TransactionView & ErrorBody>(`${coord.url}/v1/transactions`, { mode: 'msg', gid, submit: true, wait: true, check: { participant: `shop-${run}`, action: 'dtx-msg-check' }, branches });

  it('delivers a submitted message to a RabbitMQ queue and a JetStream subject, signed for each, and commits once both confirmed', async () => {
    const gid = `placed-${run}`;
    const answer = await submit(gid, [
      { participant: `queues-${run}`, action: queue, payload: { orderId: 'o-1' } },
      { participant: `subjects-${run}`, action: subject, payload: { orderId: 'o-1' } },
    ]);
    expect(answer.status).toBe(201);
    expect(answer.body.status).toBe('committed');

    const message = await channel.get(queue, { noAck: true });
    if (!message) throw new Error(`nothing in ${queue}`);
    const body = message.content.toString('utf8');
    const headers = message.properties.headers as Record<string, string>;
    const branchId = answer.body.branches.find((b) => b.participant === `queues-${run}`)!.branchId;
    expect(new Webhook(rabbitSecret).verify(body, headers)).toEqual({ gid, branchId, mode: 'msg', action: queue, phase: 'execute', payload: { orderId: 'o-1' } });
    expect(message.properties.messageId).toBe(`${gid}/${branchId}/execute`);
    // Signed for this participant only: the other's secret does not verify it.
    expect(() => new Webhook(natsSecret).verify(body, headers)).toThrow();

    const stored = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    if (!stored) throw new Error(`nothing on ${subject}`);
    const natsBranch = answer.body.branches.find((b) => b.participant === `subjects-${run}`)!.branchId;
    const natsHeaders = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [name, stored.header.get(name)]));
    expect(new Webhook(natsSecret).verify(stored.string(), natsHeaders)).toMatchObject({ gid, branchId: natsBranch, action: subject, phase: 'execute' });
    expect(stored.header.get('Nats-Msg-Id')).toBe(`${gid}/${natsBranch}/execute`);
  });

  it('keeps delivering a message to a queue that does not exist yet, and delivers it once the consumer declares the queue', async () => {
    const gid = `late-${run}`;
    const answer = await postJson<TransactionView>(`${coord.url}/v1/transactions`, {
      mode: 'msg',
      gid,
      submit: true,
      check: { participant: `shop-${run}`, action: 'dtx-msg-check' },
      branches: [{ participant: `queues-${run}`, action: lateQueue, payload: { n: 1 } }],
    });
    expect(answer.status).toBe(201);
    const refused = await until(`${gid} to be refused by the broker`, async () => {
      const view = await getJson<TransactionView>(`${coord.url}/v1/transactions/${gid}`);
      return view.branches[0].attempts > 0 && view.branches[0].lastError !== null ? view : undefined;
    });
    expect(refused.status).toBe('committing');
    expect(JSON.stringify(refused.branches[0].lastError)).toContain(`no queue ${lateQueue}`);
    // The coordinator declared nothing: the queue is the consumer's to make (a failed check closes its channel: a throwaway one).
    const probe = await amqp.createChannel();
    probe.on('error', () => undefined);
    await expect(probe.checkQueue(lateQueue)).rejects.toThrow(/NOT_FOUND/);

    await channel.assertQueue(lateQueue, { durable: true });
    const view = await until(`${gid} to commit`, async () => {
      const current = await getJson<TransactionView>(`${coord.url}/v1/transactions/${gid}`);
      return current.status === 'committed' ? current : undefined;
    });
    expect(view.status).toBe('committed');
    const message = await channel.get(lateQueue, { noAck: true });
    expect(message && JSON.parse(message.content.toString('utf8'))).toMatchObject({ gid, action: lateQueue, payload: { n: 1 } });
  });

  it('refuses a publish target as the check of a message: it cannot answer', async () => {
    const answer = await postJson<ErrorBody>(`${coord.url}/v1/transactions`, {
      mode: 'msg',
      check: { participant: `queues-${run}`, action: queue },
      branches: [{ participant: `subjects-${run}`, action: subject, payload: {} }],
    });
    expect({ status: answer.status, error: answer.body.error, field: answer.body.field }).toEqual({ status: 400, error: ErrorCode.VALIDATION_FAILED, field: 'check.participant' });
  });
});
