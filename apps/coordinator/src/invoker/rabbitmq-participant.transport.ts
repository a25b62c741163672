import { Logger } from '@nestjs/common';
import { RmqRecordBuilder } from '@nestjs/microservices';
import amqplib from 'amqplib';
import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import { BRANCH_MESSAGE_PATTERN, rabbitmqParticipantQueue, type CallOutcome, type PhaseCallBody, type TraceContextHeaders } from '@nest-dtx/protocol';
import { standaloneOutage } from '../logging/dependency-outages.js';
import { describeCause, type OutageEpisode } from '../logging/outage-episode.js';
import type { ParticipantRecord } from '../store/records.js';
import { OutageAwareRmqClient } from './broker-clients.js';
import { describeError, sendForReply, signedMessage } from './microservice-reply.js';
import { publishedCall, refusedByPublishTarget } from './publish-call.js';

/** The publisher's connection, among the RabbitMQ episode's sources (one per request/reply participant too). */
const PUBLISHER = 'publisher';

/** A publish waiting for the broker's confirm. */
interface PendingPublish {
  /** The broker's reason when it sent the message back unroutable (basic.return), before its confirm. */
  returned: string | null;
}

/**
 * Publishes to queues through RabbitMQ's default exchange on one confirm channel, and counts a
 * message delivered only once the broker confirmed it (publisher confirms). Messages are
 * `mandatory`: one that no queue takes comes back (basic.return) before its confirm, and is
 * then not delivered. The queue is never declared here: the consumer owns it (its durability,
 * its limits, its dead-lettering).
 *
 * One connection and channel for every publish target, opened on first use and opened again on
 * the next publish after the broker closed them (a restart, a lost socket).
 */
export class RabbitMqPublisher {
  private readonly logger = new Logger('RabbitMQ');
  private channel: Promise<ConfirmChannel> | null = null;
  private connection: ChannelModel | null = null;
  /** In-flight publishes by message id, oldest first: the broker returns and confirms in publish order. */
  private readonly pending = new Map<string, PendingPublish[]>();
  private closing = false;

  constructor(
    private readonly url: string,
    /** How long opening the connection may take (the call timeout: a call never waits longer). */
    private readonly connectTimeoutMs: number,
    /** RabbitMQ's outage episode: a broker away is one warn line, not one per publish. */
    private readonly outage: OutageEpisode = standaloneOutage('rabbitmq', 'RabbitMQ'),
  ) {}

  /**
   * Publishes `content` to `queue` (persistent, mandatory, message id and headers as given);
   * ok once confirmed, transient when returned unroutable, nacked, or not confirmed in time.
   */
  publish(queue: string, content: string, messageId: string, headers: Readonly<Record<string, string>>, timeoutMs: number): Promise<CallOutcome> {
    return new Promise<CallOutcome>((resolve) => {
      let entry: PendingPublish | null = null;
      let settled = false;
      const settle = (outcome: CallOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (entry) this.untrack(messageId, entry);
        resolve(outcome);
      };
      const timer = setTimeout(() => settle({ kind: 'transient', error: `RabbitMQ did not confirm the message to queue ${queue} within ${timeoutMs} ms` }), timeoutMs);
      this.openChannel().then(
        (channel) => {
          // Timed out while connecting: publishing now would deliver a call already counted as failed.
          if (settled) return;
          const tracked: PendingPublish = { returned: null };
          entry = tracked;
          this.track(messageId, tracked);
          try {
            channel.publish(
              '',
              queue,
              Buffer.from(content, 'utf8'),
              { persistent: true, mandatory: true, messageId, contentType: 'application/json', timestamp: Math.floor(Date.now() / 1000), headers },
              (error: unknown) => {
                if (error) settle({ kind: 'transient', error: `RabbitMQ did not take the message to queue ${queue} (nack): ${describeError(error)}` });
                else if (tracked.returned !== null) {
                  settle({ kind: 'transient', error: `RabbitMQ has no queue ${queue} (the message came back unroutable: ${tracked.returned}); the consumer declares the queue` });
                } else settle({ kind: 'ok', result: null });
              },
            );
          } catch (error) {
            settle({ kind: 'transient', error: `RabbitMQ publish to queue ${queue} failed: ${describeError(error)}` });
          }
        },
        (error: unknown) => settle({ kind: 'transient', error: `cannot reach RabbitMQ: ${describeError(error)}` }),
      );
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const connection = this.connection;
    this.connection = null;
    this.channel = null;
    await connection?.close().catch(() => undefined);
  }

  private track(messageId: string, entry: PendingPublish): void {
    const list = this.pending.get(messageId);
    if (list) list.push(entry);
    else this.pending.set(messageId, [entry]);
  }

  private untrack(messageId: string, entry: PendingPublish): void {
    const list = this.pending.get(messageId);
    if (!list) return;
    const at = list.indexOf(entry);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.pending.delete(messageId);
  }

  /** basic.return: the oldest in-flight publish of that id not yet returned is the one that came back. */
  private returned(message: Message): void {
    const id = typeof message.properties.messageId === 'string' ? message.properties.messageId : undefined;
    const entry = id === undefined ? undefined : this.pending.get(id)?.find((candidate) => candidate.returned === null);
    // basic.return's fields carry the reason, which amqplib's types leave out.
    const fields = message.fields as Message['fields'] & { replyCode?: number; replyText?: string };
    if (entry) entry.returned = `${fields.replyCode ?? '?'} ${fields.replyText ?? 'returned'}`;
  }

  private openChannel(): Promise<ConfirmChannel> {
    if (this.closing) return Promise.reject(new Error('the coordinator is shutting down'));
    if (!this.channel) {
      const opening = this.connect();
      this.channel = opening;
      // A failed attempt is not kept: the next publish tries again.
      opening.catch((error: unknown) => {
        if (this.channel === opening) this.channel = null;
        if (!this.closing) this.outage.failed(`publisher: ${describeCause(error)}`, PUBLISHER);
      });
    }
    return this.channel;
  }

  private async connect(): Promise<ConfirmChannel> {
    const connection = await amqplib.connect(this.url, { timeout: this.connectTimeoutMs, clientProperties: { connection_name: 'nest-dtx coordinator' } });
    const drop = (): void => {
      if (this.connection !== connection) return;
      this.connection = null;
      this.channel = null;
    };
    // 'close' follows every 'error'; without a listener an 'error' would be thrown.
    connection.on('error', (error: Error) => this.outage.failed(`publisher: ${describeCause(error)}`, PUBLISHER));
    connection.on('close', () => {
      // Closed under it (a broker restart), not by us: the next publish connects again.
      if (this.connection === connection && !this.closing) this.outage.failed('publisher: connection closed', PUBLISHER);
      drop();
    });
    try {
      const channel = await connection.createConfirmChannel();
      channel.on('return', (message: Message) => this.returned(message));
      channel.on('error', (error: Error) => this.logger.warn(`RabbitMQ channel error: ${error.message}`));
      // A channel the broker closed (its unconfirmed publishes fail with it) is not reused: start over.
      channel.on('close', () => {
        drop();
        void connection.close().catch(() => undefined);
      });
      this.connection = connection;
      if (this.closing) {
        await connection.close().catch(() => undefined);
        throw new Error('the coordinator is shutting down');
      }
      this.outage.recovered(PUBLISHER);
      return channel;
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
  }
}

/**
 * The rabbitmq transport, over the coordinator's RABBITMQ_URL (docs/transports.md "RabbitMQ and NATS"):
 * - request/reply participants: NestJS ClientRMQ, one per participant, sending `tx.branch`
 *   messages to the participant's own queue `dtx.participant.<name>` (which the participant
 *   declares and consumes); each message expires after the call timeout, so a call nobody took
 *   in time is not run later. Replies as PROTOCOL.md 5.2.
 * - publish targets: the call's 5.1 body published to the queue named like the action (RabbitMqPublisher).
 */
export class RabbitMqParticipantTransport {
  private readonly clients = new Map<string, OutageAwareRmqClient>();
  private readonly publisher: RabbitMqPublisher | null;

  constructor(
    private readonly url: string | undefined,
    callTimeoutMs: number,
    /** RabbitMQ's outage episode, which the publisher and every participant's client report to. */
    private readonly outage: OutageEpisode = standaloneOutage('rabbitmq', 'RabbitMQ'),
  ) {
    this.publisher = url ? new RabbitMqPublisher(url, callTimeoutMs, outage) : null;
  }

  /** `trace`: the call's W3C trace context, as AMQP headers (and, request/reply, in the data's `headers` too). */
  async call(participant: ParticipantRecord, body: PhaseCallBody, timeoutMs: number, keys: readonly Buffer[], trace?: TraceContextHeaders): Promise<CallOutcome> {
    if (!this.url || !this.publisher) {
      return { kind: 'transient', error: `participant ${participant.name} uses transport rabbitmq, and this coordinator instance has no RABBITMQ_URL` };
    }
    if (participant.publish) {
      const refused = refusedByPublishTarget(participant, body);
      if (refused) return refused;
      const call = publishedCall(body, keys, trace);
      return this.publisher.publish(body.action, call.content, call.id, call.headers, timeoutMs);
    }
    const record = new RmqRecordBuilder(signedMessage(body, keys, trace)).setOptions(trace ? { expiration: String(timeoutMs), headers: trace } : { expiration: String(timeoutMs) }).build();
    return sendForReply(this.clientFor(participant.name, this.url), BRANCH_MESSAGE_PATTERN, record, timeoutMs);
  }

  /** Drops the cached client of a participant whose registration changed. */
  forget(name: string): void {
    const client = this.clients.get(name);
    if (!client) return;
    this.clients.delete(name);
    // Closed on purpose: a connection that was down no longer holds the outage open.
    this.outage.forget(rabbitmqParticipantQueue(name));
    // ClientProxy.close() is typed any; ClientRMQ's resolves once its connection closed.
    void Promise.resolve(client.close() as unknown).catch(() => undefined);
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all([...clients.map(async (c) => { await c.close(); }), this.publisher?.close()]);
  }

  private clientFor(name: string, url: string): OutageAwareRmqClient {
    let client = this.clients.get(name);
    if (!client) {
      const queue = rabbitmqParticipantQueue(name);
      // noAssert: the participant declares its queue (with its own options); a call to a queue
      // that does not exist yet is dropped by the broker and times out, which is transient.
      client = new OutageAwareRmqClient({ urls: [url], queue, noAssert: true, persistent: false }, this.outage, queue);
      this.clients.set(name, client);
    }
    return client;
  }
}
