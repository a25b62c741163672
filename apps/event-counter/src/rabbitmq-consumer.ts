import { Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import amqplib from 'amqplib';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { amqpInboxMessage } from '@nest-dtx/sdk';
import { describeTally, processBatch } from './batch.js';
import type { CounterEnv } from './counter-env.js';
import { ORDER_EVENTS } from './event-names.js';
import type { EventStore } from './event-store.js';

/** A batch is complete when full, or when no further message has come for this long. */
const GATHER_MS = 100;

/**
 * Consumes the RabbitMQ queue `order.created`, which it declares (durable: the coordinator
 * publishes persistent messages to it through the default exchange, and never declares it).
 * Up to BATCH_SIZE unacknowledged messages at once (the prefetch), processed as a batch and
 * acknowledged together once all of it is through (batch.ts).
 *
 * Crash-only: when the connection to RabbitMQ is lost the process exits (a supervisor restarts
 * it); its unacknowledged messages go back to the queue and are redelivered.
 */
export class RabbitMqEventConsumer {
  private readonly logger = new Logger('RabbitMQ');
  private connection: ChannelModel | null = null;
  private channel: Channel | null = null;
  private readonly buffer: ConsumeMessage[] = [];
  private wake: (() => void) | null = null;
  private stopping = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly env: CounterEnv,
    private readonly store: EventStore,
  ) {}

  async start(): Promise<void> {
    const connection = await amqplib.connect(this.env.RABBITMQ_URL, { timeout: 10_000, clientProperties: { connection_name: 'event-counter' } });
    this.connection = connection;
    connection.on('error', (error: Error) => this.logger.warn(`connection error: ${error.message}`));
    connection.on('close', () => this.lost('the connection to RabbitMQ closed'));
    const channel = await connection.createChannel();
    this.channel = channel;
    channel.on('error', (error: Error) => this.logger.warn(`channel error: ${error.message}`));
    channel.on('close', () => this.lost('the RabbitMQ channel closed'));
    await channel.assertQueue(ORDER_EVENTS.event, { durable: true });
    await channel.prefetch(this.env.BATCH_SIZE);
    await channel.consume(
      ORDER_EVENTS.event,
      (message) => {
        // null: the broker cancelled the consumer (the queue was deleted).
        if (!message) return this.lost(`RabbitMQ cancelled the consumer of queue ${ORDER_EVENTS.event}`);
        this.buffer.push(message);
        this.wake?.();
      },
      { noAck: false },
    );
    this.loop = this.run(channel);
    this.logger.log(`consuming queue ${ORDER_EVENTS.event} (batches of up to ${this.env.BATCH_SIZE})`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    // Closing the connection hands any message not acknowledged back to the queue.
    await this.connection?.close().catch(() => undefined);
  }

  private async run(channel: Channel): Promise<void> {
    while (!this.stopping) {
      if (this.buffer.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
      }
      // Gather the rest of what the prefetch lets through (queued messages come in one burst).
      for (let had = -1; !this.stopping && this.buffer.length < this.env.BATCH_SIZE && this.buffer.length !== had; ) {
        had = this.buffer.length;
        await delay(GATHER_MS);
      }
      if (this.stopping) break;
      const batch = this.buffer.splice(0, this.env.BATCH_SIZE);
      const { settlements, tally } = await processBatch('rabbitmq', batch, amqpInboxMessage, this.store, this.env.EVENT_DELAY_MS, this.logger);
      batch.forEach((message, i) => (settlements[i] === 'ack' ? channel.ack(message) : channel.nack(message, false, true)));
      this.logger.log(`batch of ${batch.length} acknowledged: ${describeTally(tally)}`);
      // A failure that may pass (the database went away): do not spin on its redelivery.
      if (tally.redeliver > 0) await delay(1_000);
    }
  }

  private lost(reason: string): void {
    if (this.stopping) return;
    this.logger.error(`${reason}: exiting (unacknowledged messages go back to the queue)`);
    process.exit(1);
  }
}
