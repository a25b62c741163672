import { Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, StorageType, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { natsConnectionOptions } from '@nest-dtx/protocol';
import { natsInboxMessage } from '@nest-dtx/sdk';
import { describeTally, processBatch } from './batch.js';
import type { CounterEnv } from './counter-env.js';
import { ORDER_EVENTS } from './event-names.js';
import type { EventStore } from './event-store.js';

/** How long one fetch waits for its batch to fill (JetStream's minimum is 1 s). */
const FETCH_EXPIRES_MS = 1_000;
/** The stream's duplicate window: a message the coordinator publishes again (same Nats-Msg-Id) within it is stored once. */
const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

/**
 * Consumes `order.created` from NATS JetStream. It owns the stream (ORDER_CREATED, file storage,
 * capturing the subject; the coordinator publishes to the subject and never creates streams)
 * and its durable pull consumer (event-counter, explicit acks, ack_wait NATS_ACK_WAIT_MS). It
 * fetches batches of up to BATCH_SIZE and acknowledges each batch once all of it is through
 * (batch.ts). A message left unacknowledged (the process died mid-batch) is redelivered once its
 * ack_wait has passed.
 */
export class NatsEventConsumer {
  private readonly logger = new Logger('NATS');
  private connection: NatsConnection | null = null;
  private fetching: ConsumerMessages | null = null;
  private stopping = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly env: CounterEnv,
    private readonly store: EventStore,
  ) {}

  async start(): Promise<void> {
    const connection = await connect({ ...natsConnectionOptions(this.env.NATS_URL), name: 'event-counter', maxReconnectAttempts: -1, timeout: 10_000 });
    this.connection = connection;
    const manager = await jetstreamManager(connection);
    const stream = ORDER_EVENTS.natsStream;
    try {
      const info = await manager.streams.info(stream);
      if (!info.config.subjects?.includes(ORDER_EVENTS.event)) await manager.streams.update(stream, { subjects: [...(info.config.subjects ?? []), ORDER_EVENTS.event] });
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.StreamNotFound) throw error;
      await manager.streams.add({ name: stream, subjects: [ORDER_EVENTS.event], storage: StorageType.File, duplicate_window: nanos(DUPLICATE_WINDOW_MS) });
    }
    const consumer = {
      durable_name: ORDER_EVENTS.natsConsumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.env.NATS_ACK_WAIT_MS),
      deliver_policy: DeliverPolicy.All,
      filter_subject: ORDER_EVENTS.event,
    };
    try {
      await manager.consumers.info(stream, ORDER_EVENTS.natsConsumer);
      await manager.consumers.update(stream, ORDER_EVENTS.natsConsumer, { ack_wait: consumer.ack_wait });
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.ConsumerNotFound) throw error;
      await manager.consumers.add(stream, consumer);
    }
    this.loop = this.run(connection);
    this.logger.log(`consuming subject ${ORDER_EVENTS.event} from stream ${stream} as ${ORDER_EVENTS.natsConsumer} (batches of up to ${this.env.BATCH_SIZE})`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.fetching?.close().catch(() => undefined);
    await this.loop;
    await this.connection?.drain().catch(() => undefined);
  }

  private async run(connection: NatsConnection): Promise<void> {
    const consumer = await jetstream(connection).consumers.get(ORDER_EVENTS.natsStream, ORDER_EVENTS.natsConsumer);
    while (!this.stopping) {
      const batch: JsMsg[] = [];
      try {
        this.fetching = await consumer.fetch({ max_messages: this.env.BATCH_SIZE, expires: FETCH_EXPIRES_MS });
        for await (const message of this.fetching) batch.push(message);
      } catch (error) {
        if (this.stopping) break;
        // NATS away (it reconnects by itself): what was fetched is still processed below.
        this.logger.warn(`fetch failed: ${(error as Error).message}`);
        if (batch.length === 0) await delay(1_000);
      } finally {
        this.fetching = null;
      }
      if (batch.length === 0 || this.stopping) continue;
      const { settlements, tally } = await processBatch('nats', batch, natsInboxMessage, this.store, this.env.EVENT_DELAY_MS, this.logger);
      batch.forEach((message, i) => (settlements[i] === 'ack' ? message.ack() : message.nak(1_000)));
      this.logger.log(`batch of ${batch.length} acknowledged: ${describeTally(tally)}`);
    }
  }
}
