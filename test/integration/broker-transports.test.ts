/**
 * The coordinator's broker transports against the real RabbitMQ and NATS (JetStream):
 * - publish targets: a call published to an existing queue / stream is delivered (ok) only once
 *   the broker confirmed it, with the 5.1 body and the signature headers over exactly those
 *   bytes; a missing queue / a subject no stream takes is transient; a call published twice
 *   carries the same webhook-id, and JetStream drops the second as a duplicate;
 * - request/reply participants: a minimal ServerRMQ / ServerNats (and ServerTCP / ServerRedis, the
 *   NestJS microservices transports) answering `tx.branch` gets only its own participant's
 *   calls, and its ok / failed / ongoing come back; no server is transient;
 * - an unreachable broker is transient, and a connection the broker dropped is opened again;
 * - a dropped connection is logged as one outage (one warn line, one line once it is back), and
 *   the NestJS clients' own error lines about it are debug lines.
 * Every queue, stream and subject is named for this run and deleted after it.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server as NetServer, type Socket, connect as tcpConnect } from 'node:net';
import type { AddressInfo } from 'node:net';
import amqplib from 'amqplib';
import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { ConsoleLogger, Logger, type LoggerService } from '@nestjs/common';
import { ServerNats, ServerRedis, ServerRMQ, ServerTCP, type MessageHandler } from '@nestjs/microservices';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BRANCH_MESSAGE_PATTERN,
  formatSigningSecret,
  natsBranchSubject,
  natsParticipantQueueGroup,
  rabbitmqParticipantQueue,
  redisBranchPattern,
  redisTransportOptions,
  splitSignedMessage,
  verifyCall,
  type CallOutcome,
  type MicroserviceReply,
  type PhaseCallBody,
} from '@nest-dtx/protocol';
import { MicroserviceParticipantTransport } from '../../apps/coordinator/src/invoker/microservice-participant.transport.js';
import { NatsParticipantTransport } from '../../apps/coordinator/src/invoker/nats-participant.transport.js';
import { RabbitMqParticipantTransport } from '../../apps/coordinator/src/invoker/rabbitmq-participant.transport.js';
import { OutageEpisode, type OutageLine } from '../../apps/coordinator/src/logging/outage-episode.js';
import { EgressPolicy } from '../../apps/coordinator/src/participants/egress-policy.js';
import type { ParticipantRecord } from '../../apps/coordinator/src/store/records.js';

const RABBITMQ_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomBytes(4).toString('hex');
const key = randomBytes(32);
const TIMEOUT_MS = 2_000;

const participant = (name: string, transport: ParticipantRecord['transport'], publish: boolean, address: { host: string; port: number } | null = null): ParticipantRecord => ({
  name,
  transport,
  endpoint: null,
  host: address?.host ?? null,
  port: address?.port ?? null,
  publish,
  actions: [],
  ownerKeyDigest: null,
  secretGeneration: 1,
  previousSecretGeneration: null,
  previousSecretUntil: null,
  callHeaders: {}, maxInFlight: null,
  updatedAt: new Date(),
});

let calls = 0;
/** A msg execute call to `action` (the queue or subject of a publish target). */
const execute = (action: string, payload: PhaseCallBody['payload'] = { orderId: 'o-1' }): PhaseCallBody => ({
  gid: `brokers-${run}-${++calls}`,
  branchId: 'b1',
  mode: 'msg',
  action,
  phase: 'execute',
  payload,
});

const webhook = new Webhook(formatSigningSecret(key));

/** The stream sequence of a delivered JetStream publish (its result is the PubAck's stream, seq and duplicate). */
function seqOf(outcome: CallOutcome): number {
  const result = outcome.kind === 'ok' ? outcome.result : null;
  const seq = typeof result === 'object' && result !== null && !Array.isArray(result) ? result.seq : undefined;
  if (typeof seq !== 'number') throw new Error(`no PubAck in ${JSON.stringify(outcome)}`);
  return seq;
}

/** A TCP proxy in front of a broker: `cut()` drops every connection through it, as a broker restart does. */
async function tcpProxy(target: { host: string; port: number }): Promise<{ port: number; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createServer((client) => {
    const upstream = tcpConnect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Calls until one is ok (a dropped connection may fail the first ones); at most `attempts` calls. */
async function eventuallyOk(call: () => Promise<CallOutcome>, attempts = 30): Promise<{ outcome: CallOutcome; failures: number }> {
  let outcome: CallOutcome = { kind: 'transient', error: 'not called' };
  for (let i = 0; i < attempts; i++) {
    outcome = await call();
    if (outcome.kind === 'ok') return { outcome, failures: i };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { outcome, failures: attempts };
}

/**
 * The participant side of request/reply as the SDK's handler answers it: verify the signature
 * over the data without `headers`, then ok, or failed when the payload asks for it.
 */
function branchHandler(seen: PhaseCallBody[]): MessageHandler {
  return (data: unknown) => {
    const signed = splitSignedMessage(data);
    if (!signed || !verifyCall([key], signed.headers, signed.body, Date.now() / 1000).ok) {
      return Promise.resolve({ outcome: 'failed', message: 'signature' } satisfies MicroserviceReply);
    }
    const call = JSON.parse(signed.body) as PhaseCallBody;
    seen.push(call);
    const asked = call.payload as { refuse?: boolean; ongoing?: boolean; retryAfterMs?: unknown };
    if (asked.ongoing === true) {
      // The reply as written, hint and all: the coordinator reads what it can of it.
      return Promise.resolve(('retryAfterMs' in asked ? { outcome: 'ongoing', retryAfterMs: asked.retryAfterMs } : { outcome: 'ongoing' }) as MicroserviceReply);
    }
    return Promise.resolve((asked.refuse === true ? { outcome: 'failed', message: 'insufficient funds' } : { outcome: 'ok', result: { handledBy: call.action } }) satisfies MicroserviceReply);
  };
}

/**
 * The ongoing replies (PROTOCOL.md 3.6) a request/reply participant may give, each with the
 * outcome the coordinator makes of it: the hint kept when a positive whole number (at most an
 * hour), dropped otherwise, the reply ongoing either way.
 */
const ONGOING_REPLIES: readonly { payload: PhaseCallBody['payload']; outcome: CallOutcome }[] = [
  { payload: { ongoing: true, retryAfterMs: 2000 }, outcome: { kind: 'ongoing', retryAfterMs: 2000 } },
  { payload: { ongoing: true }, outcome: { kind: 'ongoing' } },
  { payload: { ongoing: true, retryAfterMs: 0 }, outcome: { kind: 'ongoing' } },
  { payload: { ongoing: true, retryAfterMs: 2.5 }, outcome: { kind: 'ongoing' } },
  { payload: { ongoing: true, retryAfterMs: '2000' }, outcome: { kind: 'ongoing' } },
  { payload: { ongoing: true, retryAfterMs: 7 * 24 * 60 * 60 * 1000 }, outcome: { kind: 'ongoing', retryAfterMs: 60 * 60 * 1000 } },
];

/** What the coordinator made of each of ONGOING_REPLIES, over `send`. */
async function ongoingOutcomes(send: (payload: PhaseCallBody['payload']) => Promise<CallOutcome>): Promise<CallOutcome[]> {
  const outcomes: CallOutcome[] = [];
  for (const { payload } of ONGOING_REPLIES) outcomes.push(await send(payload));
  return outcomes;
}

/**
 * What an outage of the broker logs: the episode's lines, and the error lines of everything
 * logging through Nest's Logger (the NestJS clients) until `stop()`.
 */
function watchOutage(dependency: string) {
  const lines: OutageLine[] = [];
  const errors: string[] = [];
  const quiet = (): void => undefined;
  const recorder: LoggerService = {
    error: (message: unknown) => errors.push(typeof message === 'string' ? message : JSON.stringify(message)),
    warn: quiet,
    log: quiet,
    debug: quiet,
    verbose: quiet,
  };
  Logger.overrideLogger(recorder);
  return {
    outage: new OutageEpisode(dependency, (line) => lines.push(line)),
    /** The lines above debug, as [level, msg]. */
    logged: () => lines.filter((line) => line.level !== 'debug').map((line) => [line.level, line.msg]),
    errors,
    stop: (): void => {
      Logger.overrideLogger(new ConsoleLogger());
    },
  };
}

/** Waits until `done()` holds, for at most `timeoutMs`. */
async function waitFor(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function listen(server: ServerRMQ | ServerNats | ServerTCP | ServerRedis): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    void server.listen((error?: unknown) => (error ? reject(error instanceof Error ? error : new Error(JSON.stringify(error))) : resolve()));
  });
}

describe('RabbitMQ', () => {
  let admin: ChannelModel;
  let channel: Channel;
  let transport: RabbitMqParticipantTransport;
  const queue = `dtx-test.${run}.orders`;
  const target = participant(`orders-${run}`, 'rabbitmq', true);
  const servers: ServerRMQ[] = [];

  beforeAll(async () => {
    admin = await amqplib.connect(RABBITMQ_URL);
    channel = await admin.createChannel();
    await channel.assertQueue(queue, { durable: true });
    transport = new RabbitMqParticipantTransport(RABBITMQ_URL, TIMEOUT_MS);
  });

  afterAll(async () => {
    await transport?.close();
    for (const server of servers) await server.close();
    await channel?.deleteQueue(queue);
    await admin?.close();
  });

  const take = async (): Promise<GetMessage> => {
    const message = await channel.get(queue, { noAck: true });
    if (!message) throw new Error(`queue ${queue} is empty`);
    return message;
  };

  it('publishes a call to the queue named like the action: persistent, its id the webhook-id, signed over the exact body', async () => {
    const call = execute(queue);
    expect(await transport.call(target, call, TIMEOUT_MS, [key])).toEqual({ kind: 'ok', result: null });
    const message = await take();
    const body = message.content.toString('utf8');
    expect(JSON.parse(body)).toEqual(call);
    expect(message.properties).toMatchObject({ messageId: `${call.gid}/b1/execute`, contentType: 'application/json', deliveryMode: 2 });
    const headers = message.properties.headers as Record<string, string>;
    expect(headers['webhook-id']).toBe(`${call.gid}/b1/execute`);
    // Standard Webhooks' own verifier accepts it; a changed byte or another key does not.
    expect(webhook.verify(body, headers)).toEqual(call);
    expect(() => webhook.verify(body.replace('o-1', 'o-2'), headers)).toThrow();
    expect(verifyCall([randomBytes(32)], headers, body, Date.now() / 1000).ok).toBe(false);
  });

  it('publishes the same call twice with the same webhook-id, which the consumer dedupes on', async () => {
    const call = execute(queue);
    expect((await transport.call(target, call, TIMEOUT_MS, [key])).kind).toBe('ok');
    expect((await transport.call(target, call, TIMEOUT_MS, [key])).kind).toBe('ok');
    const [first, second] = [await take(), await take()];
    expect(first.properties.messageId).toBe(`${call.gid}/b1/execute`);
    expect(second.properties.messageId).toBe(first.properties.messageId);
    expect((second.properties.headers as Record<string, string>)['webhook-id']).toBe((first.properties.headers as Record<string, string>)['webhook-id']);
  });

  it('counts a publish to a queue that does not exist as transient, naming the queue, and declares nothing', async () => {
    const missing = `dtx-test.${run}.no-such-queue`;
    const outcome = await transport.call(target, execute(missing), TIMEOUT_MS, [key]);
    expect(outcome).toMatchObject({ kind: 'transient', error: expect.stringContaining(`no queue ${missing}`) });
    // A failed check closes its channel: a throwaway one.
    const probe = await admin.createChannel();
    probe.on('error', () => undefined);
    await expect(probe.checkQueue(missing)).rejects.toThrow(/NOT_FOUND/);
    // The transport's own channel is fine after a returned message.
    expect((await transport.call(target, execute(queue), TIMEOUT_MS, [key])).kind).toBe('ok');
    await take();
  });

  it('takes only msg execute on a publish target', async () => {
    const outcome = await transport.call(target, { ...execute(queue), mode: 'msg', phase: 'check' }, TIMEOUT_MS, [key]);
    expect(outcome).toMatchObject({ kind: 'transient', error: expect.stringContaining('publish target') });
    expect(await channel.get(queue, { noAck: true })).toBe(false);
  });

  it('calls a request/reply participant on its own queue: ok, failed and ongoing come back, and the other participant sees none of its calls', async () => {
    const seen = new Map<string, PhaseCallBody[]>();
    for (const name of [`bank-a-${run}`, `bank-b-${run}`]) {
      const server = new ServerRMQ({ urls: [RABBITMQ_URL], queue: rabbitmqParticipantQueue(name), queueOptions: { durable: true, autoDelete: true } });
      seen.set(name, []);
      server.addHandler(BRANCH_MESSAGE_PATTERN, branchHandler(seen.get(name)!));
      await listen(server);
      servers.push(server);
    }
    const a = participant(`bank-a-${run}`, 'rabbitmq', false);
    const call = { ...execute('debit'), mode: 'tcc' as const, phase: 'try' as const };
    expect(await transport.call(a, call, TIMEOUT_MS, [key])).toEqual({ kind: 'ok', result: { handledBy: 'debit' } });
    expect(await transport.call(a, { ...call, payload: { refuse: true } }, TIMEOUT_MS, [key])).toEqual({ kind: 'failed', error: { message: 'insufficient funds' } });
    expect(await ongoingOutcomes((payload) => transport.call(a, { ...call, payload }, TIMEOUT_MS, [key]))).toEqual(ONGOING_REPLIES.map((r) => r.outcome));
    expect(seen.get(`bank-a-${run}`)!.map((c) => c.gid)).toEqual(Array.from({ length: 2 + ONGOING_REPLIES.length }, () => call.gid));
    expect(seen.get(`bank-b-${run}`)).toEqual([]);
  });

  it('counts a request/reply call nobody consumes as transient, within the call timeout', async () => {
    const nobody = participant(`nobody-${run}`, 'rabbitmq', false);
    expect(await transport.call(nobody, { ...execute('debit'), mode: 'tcc', phase: 'try' }, 1_000, [key])).toEqual({ kind: 'transient', error: 'no answer within 1000 ms' });
  });

  it('counts every call as transient while the broker cannot be reached', async () => {
    const port = await closedPort();
    const unreachable = new RabbitMqParticipantTransport(`amqp://guest:guest@127.0.0.1:${port}`, 1_000);
    try {
      expect(await unreachable.call(target, execute(queue), 1_000, [key])).toMatchObject({ kind: 'transient', error: expect.stringContaining('cannot reach RabbitMQ') });
      expect((await unreachable.call(participant(`bank-a-${run}`, 'rabbitmq', false), { ...execute('debit'), mode: 'tcc', phase: 'try' }, 1_000, [key])).kind).toBe('transient');
    } finally {
      await unreachable.close();
    }
  });

  it('counts a call as transient on an instance without RABBITMQ_URL', async () => {
    const unconfigured = new RabbitMqParticipantTransport(undefined, 1_000);
    expect(await unconfigured.call(target, execute(queue), 1_000, [key])).toMatchObject({ kind: 'transient', error: expect.stringContaining('no RABBITMQ_URL') });
  });

  it('publishes again after the broker dropped its connection', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(RABBITMQ_URL).port || 5672) });
    const url = new URL(RABBITMQ_URL);
    url.port = String(proxy.port);
    const proxied = new RabbitMqParticipantTransport(url.toString(), TIMEOUT_MS);
    try {
      expect((await proxied.call(target, execute(queue), TIMEOUT_MS, [key])).kind).toBe('ok');
      await take();
      proxy.cut();
      const { outcome } = await eventuallyOk(() => proxied.call(target, execute(queue), TIMEOUT_MS, [key]));
      expect(outcome.kind).toBe('ok');
      // Every failed attempt published nothing that was counted; whatever arrived is there to take.
      expect((await take()).properties.headers).toHaveProperty('webhook-signature');
    } finally {
      await proxied.close();
      await proxy.close();
      await channel.purgeQueue(queue);
    }
  });

  it('logs a dropped connection as one outage of the publisher and the request/reply clients, and no error line', async () => {
    const name = `bank-outage-${run}`;
    const server = new ServerRMQ({ urls: [RABBITMQ_URL], queue: rabbitmqParticipantQueue(name), queueOptions: { durable: true, autoDelete: true } });
    server.addHandler(BRANCH_MESSAGE_PATTERN, branchHandler([]));
    await listen(server);
    servers.push(server);
    const proxy = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(RABBITMQ_URL).port || 5672) });
    const url = new URL(RABBITMQ_URL);
    url.port = String(proxy.port);
    const watch = watchOutage('rabbitmq');
    const proxied = new RabbitMqParticipantTransport(url.toString(), TIMEOUT_MS, watch.outage);
    const bank = participant(name, 'rabbitmq', false);
    const tryCall = () => proxied.call(bank, { ...execute('debit'), mode: 'tcc', phase: 'try' }, TIMEOUT_MS, [key]);
    const publish = () => proxied.call(target, execute(queue), TIMEOUT_MS, [key]);
    try {
      expect((await publish()).kind).toBe('ok');
      expect((await tryCall()).kind).toBe('ok');
      proxy.cut();
      // The client reconnects by itself (after 5 s); the publisher on the next publish.
      expect((await eventuallyOk(tryCall, 60)).outcome.kind).toBe('ok');
      expect((await eventuallyOk(publish)).outcome.kind).toBe('ok');
      await waitFor('the outage to end', () => !watch.outage.ongoing);
      expect(watch.logged()).toEqual([
        ['warn', expect.stringMatching(/^rabbitmq unreachable: /)],
        ['log', expect.stringMatching(/^rabbitmq reachable again after \d+\.\d s \(\d+ failures?\)$/)],
      ]);
      expect(watch.errors).toEqual([]);
    } finally {
      watch.stop();
      await proxied.close();
      await proxy.close();
      await channel.purgeQueue(queue);
    }
  });
});

describe('NATS JetStream', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let transport: NatsParticipantTransport;
  const stream = `DTX_TEST_${run}`;
  const subject = `dtx-test.${run}.orders`;
  const target = participant(`orders-${run}`, 'nats', true);
  const servers: ServerNats[] = [];

  beforeAll(async () => {
    nc = await natsConnect({ servers: NATS_URL });
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`dtx-test.${run}.>`] });
    transport = new NatsParticipantTransport(NATS_URL, TIMEOUT_MS);
  });

  afterAll(async () => {
    await transport?.close();
    for (const server of servers) await server.close();
    await jsm?.streams.delete(stream);
    await nc?.close();
  });

  it('publishes a call to the subject named like the action: delivered on its PubAck, Nats-Msg-Id the webhook-id, signed over the exact body', async () => {
    const call = execute(subject);
    const outcome = await transport.call(target, call, TIMEOUT_MS, [key]);
    expect(outcome).toMatchObject({ kind: 'ok', result: { stream, duplicate: false } });
    const seq = seqOf(outcome);
    const stored = (await jsm.streams.getMessage(stream, { seq }))!;
    const body = stored.string();
    expect(stored.subject).toBe(subject);
    expect(JSON.parse(body)).toEqual(call);
    const headers = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'Nats-Msg-Id'].map((name) => [name, stored.header.get(name)]));
    expect(headers['webhook-id']).toBe(`${call.gid}/b1/execute`);
    expect(headers['Nats-Msg-Id']).toBe(headers['webhook-id']);
    expect(webhook.verify(body, headers)).toEqual(call);
    expect(() => webhook.verify(body.replace('o-1', 'o-2'), headers)).toThrow();
  });

  it('publishes the same call twice with the same webhook-id, and JetStream keeps one (the second is a duplicate)', async () => {
    const call = execute(subject);
    const first = await transport.call(target, call, TIMEOUT_MS, [key]);
    const second = await transport.call(target, call, TIMEOUT_MS, [key]);
    expect(first).toMatchObject({ kind: 'ok', result: { duplicate: false } });
    expect(second).toMatchObject({ kind: 'ok', result: { duplicate: true } });
    const seq = seqOf(first);
    expect(seqOf(second)).toBe(seq);
    expect((await jsm.streams.getMessage(stream, { seq }))!.header.get('webhook-id')).toBe(`${call.gid}/b1/execute`);
  });

  it('counts a publish to a subject no stream takes as transient, saying so, and creates no stream', async () => {
    const orphan = `dtx-test-unstreamed.${run}.orders`;
    const outcome = await transport.call(target, execute(orphan), TIMEOUT_MS, [key]);
    expect(outcome).toMatchObject({ kind: 'transient', error: expect.stringContaining(`no JetStream stream takes subject ${orphan}`) });
    await expect(jsm.streams.find(orphan)).rejects.toThrow();
  });

  it('takes only msg execute on a publish target', async () => {
    expect(await transport.call(target, { ...execute(subject), mode: 'saga', phase: 'compensate' }, TIMEOUT_MS, [key])).toMatchObject({
      kind: 'transient',
      error: expect.stringContaining('publish target'),
    });
  });

  it('calls a request/reply participant on tx.branch.<name>: ok, failed and ongoing come back, and the other participant sees none of its calls', async () => {
    const seen = new Map<string, PhaseCallBody[]>();
    for (const name of [`bank-a-${run}`, `bank-b-${run}`]) {
      const server = new ServerNats({ servers: NATS_URL, queue: natsParticipantQueueGroup(name) });
      seen.set(name, []);
      server.addHandler(natsBranchSubject(name), branchHandler(seen.get(name)!));
      await listen(server);
      servers.push(server);
    }
    const a = participant(`bank-a-${run}`, 'nats', false);
    const call = { ...execute('debit'), mode: 'saga' as const };
    expect(await transport.call(a, call, TIMEOUT_MS, [key])).toEqual({ kind: 'ok', result: { handledBy: 'debit' } });
    expect(await transport.call(a, { ...call, payload: { refuse: true } }, TIMEOUT_MS, [key])).toEqual({ kind: 'failed', error: { message: 'insufficient funds' } });
    expect(await ongoingOutcomes((payload) => transport.call(a, { ...call, payload }, TIMEOUT_MS, [key]))).toEqual(ONGOING_REPLIES.map((r) => r.outcome));
    expect(seen.get(`bank-a-${run}`)!.map((c) => c.gid)).toEqual(Array.from({ length: 2 + ONGOING_REPLIES.length }, () => call.gid));
    expect(seen.get(`bank-b-${run}`)).toEqual([]);
  });

  it('counts a request/reply call nobody answers as transient, within the call timeout', async () => {
    const nobody = participant(`nobody-${run}`, 'nats', false);
    // NATS says at once that nobody subscribes (no responders), or the call times out.
    expect(await transport.call(nobody, { ...execute('debit'), mode: 'tcc', phase: 'try' }, 1_000, [key])).toMatchObject({
      kind: 'transient',
      error: expect.stringMatching(/no subscribers listening to that message \("tx\.branch\.nobody-|no answer within 1000 ms/),
    });
  });

  it('counts every call as transient while the server cannot be reached', async () => {
    const port = await closedPort();
    const unreachable = new NatsParticipantTransport(`nats://127.0.0.1:${port}`, 1_000);
    try {
      expect((await unreachable.call(target, execute(subject), 1_000, [key])).kind).toBe('transient');
      expect((await unreachable.call(participant(`bank-a-${run}`, 'nats', false), { ...execute('debit'), mode: 'tcc', phase: 'try' }, 1_000, [key])).kind).toBe('transient');
    } finally {
      await unreachable.close();
    }
  });

  it('counts a call as transient on an instance without NATS_URL', async () => {
    const unconfigured = new NatsParticipantTransport(undefined, 1_000);
    expect(await unconfigured.call(target, execute(subject), 1_000, [key])).toMatchObject({ kind: 'transient', error: expect.stringContaining('no NATS_URL') });
  });

  it('publishes again after the server dropped its connection', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(NATS_URL).port || 4222) });
    const proxied = new NatsParticipantTransport(`nats://127.0.0.1:${proxy.port}`, TIMEOUT_MS);
    try {
      expect((await proxied.call(target, execute(subject), TIMEOUT_MS, [key])).kind).toBe('ok');
      proxy.cut();
      const { outcome } = await eventuallyOk(() => proxied.call(target, execute(subject), TIMEOUT_MS, [key]));
      expect(outcome).toMatchObject({ kind: 'ok', result: { stream } });
    } finally {
      await proxied.close();
      await proxy.close();
    }
  });

  it('logs a dropped connection as one outage, and no error line', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(NATS_URL).port || 4222) });
    const watch = watchOutage('nats');
    const proxied = new NatsParticipantTransport(`nats://127.0.0.1:${proxy.port}`, TIMEOUT_MS, watch.outage);
    try {
      expect((await proxied.call(target, execute(subject), TIMEOUT_MS, [key])).kind).toBe('ok');
      proxy.cut();
      expect((await eventuallyOk(() => proxied.call(target, execute(subject), TIMEOUT_MS, [key]))).outcome.kind).toBe('ok');
      await waitFor('the outage to end', () => !watch.outage.ongoing);
      expect(watch.logged()).toEqual([
        ['warn', 'nats unreachable: connection lost, reconnecting'],
        ['log', expect.stringMatching(/^nats reachable again after \d+\.\d s \(1 failure\)$/)],
      ]);
      expect(watch.errors).toEqual([]);
    } finally {
      watch.stop();
      await proxied.close();
      await proxy.close();
    }
  });
});

describe('NestJS microservices: TCP and Redis', () => {
  // The participants run on this machine: the policy of a coordinator that allows loopback ones.
  const transport = new MicroserviceParticipantTransport(REDIS_URL, EgressPolicy.parse('loopback'));
  const servers: (ServerTCP | ServerRedis)[] = [];

  afterAll(async () => {
    await transport.close();
    for (const server of servers) await server.close();
  });

  it('calls a TCP participant on tx.branch: ok, failed and ongoing come back', async () => {
    const port = await closedPort();
    const server = new ServerTCP({ host: '127.0.0.1', port });
    const seen: PhaseCallBody[] = [];
    server.addHandler(BRANCH_MESSAGE_PATTERN, branchHandler(seen));
    await listen(server);
    servers.push(server);
    const bank = participant(`bank-tcp-${run}`, 'tcp', false, { host: '127.0.0.1', port });
    const call = { ...execute('debit'), mode: 'tcc' as const, phase: 'confirm' as const };
    expect(await transport.call(bank, call, TIMEOUT_MS, [key])).toEqual({ kind: 'ok', result: { handledBy: 'debit' } });
    expect(await transport.call(bank, { ...call, payload: { refuse: true } }, TIMEOUT_MS, [key])).toEqual({ kind: 'failed', error: { message: 'insufficient funds' } });
    expect(await ongoingOutcomes((payload) => transport.call(bank, { ...call, payload }, TIMEOUT_MS, [key]))).toEqual(ONGOING_REPLIES.map((r) => r.outcome));
    expect(seen).toHaveLength(2 + ONGOING_REPLIES.length);
  });

  it('calls a Redis participant on its own pattern: ok, failed and ongoing come back, and the other participant sees none of its calls', async () => {
    const seen = new Map<string, PhaseCallBody[]>();
    for (const name of [`bank-a-${run}`, `bank-b-${run}`]) {
      const server = new ServerRedis(redisTransportOptions(REDIS_URL));
      seen.set(name, []);
      server.addHandler(redisBranchPattern(name), branchHandler(seen.get(name)!));
      await listen(server);
      servers.push(server);
    }
    const a = participant(`bank-a-${run}`, 'redis', false);
    const call = { ...execute('debit'), mode: '2pc' as const, phase: 'prepare' as const };
    expect(await transport.call(a, call, TIMEOUT_MS, [key])).toEqual({ kind: 'ok', result: { handledBy: 'debit' } });
    expect(await transport.call(a, { ...call, payload: { refuse: true } }, TIMEOUT_MS, [key])).toEqual({ kind: 'failed', error: { message: 'insufficient funds' } });
    expect(await ongoingOutcomes((payload) => transport.call(a, { ...call, payload }, TIMEOUT_MS, [key]))).toEqual(ONGOING_REPLIES.map((r) => r.outcome));
    expect(seen.get(`bank-a-${run}`)).toHaveLength(2 + ONGOING_REPLIES.length);
    expect(seen.get(`bank-b-${run}`)).toEqual([]);
  });
});
