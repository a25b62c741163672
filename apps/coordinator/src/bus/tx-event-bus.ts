import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Logger, type OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { GlobalStatus } from '@nest-dtx/protocol';
import { standaloneOutage } from '../logging/dependency-outages.js';
import { describeCause, type OutageEpisode } from '../logging/outage-episode.js';

/** A durable change that other parts (waiting clients, other instances) may want to hear of. */
export type BusMessage =
  | { kind: 'tx'; gid: string; status: GlobalStatus }
  | { kind: 'participant'; name: string };

/**
 * Fan-out of state changes. Never a source of truth: a lost message only delays a waiter,
 * which also polls the store.
 */
export abstract class TxEventBus {
  protected readonly local = new EventEmitter().setMaxListeners(0);

  abstract publish(message: BusMessage): void;

  /** Resolves when the bus's transport answers (readiness). */
  abstract ping(): Promise<void>;

  subscribe(listener: (message: BusMessage) => void): () => void {
    this.local.on('message', listener);
    return () => this.local.off('message', listener);
  }
}

/** Single instance without Redis: the bus is this process. */
export class InProcessTxEventBus extends TxEventBus {
  publish(message: BusMessage): void {
    this.local.emit('message', message);
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }
}

/** The pub/sub channel every instance publishes its changes on and listens to. */
export const TX_EVENTS_CHANNEL = 'dtx:events';

/** Several instances: Redis pub/sub carries every change to every instance. */
export class RedisTxEventBus extends TxEventBus implements OnModuleDestroy {
  private readonly logger = new Logger('RedisTxEventBus');
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  /** Tags this process's messages so it does not hear them twice. */
  private readonly origin = randomUUID();
  /** Shutting down: what fails now (a subscribe still queued) is no outage. */
  private closing = false;

  constructor(
    url: string,
    /** Redis's outage episode: a lost Redis is one warn line, and one line when both connections are back. */
    private readonly outage: OutageEpisode = standaloneOutage('redis', 'RedisTxEventBus'),
  ) {
    super();
    const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false };
    this.publisher = new Redis(url, options);
    this.subscriber = new Redis(url, { ...options, enableOfflineQueue: true });
    for (const [name, client] of [['publisher', this.publisher], ['subscriber', this.subscriber]] as const) {
      // ioredis reports every refused reconnect as an 'error', and reconnects by itself.
      client.on('error', (error: Error) => this.lost(name, describeCause(error)));
      client.on('reconnecting', () => this.lost(name, 'connection lost, reconnecting'));
      // 'ready': connected and answering (ioredis subscribes the subscriber again right then).
      client.on('ready', () => this.outage.recovered(name));
    }
    // Queued while Redis is away (the subscriber has an offline queue): refused only past its retries.
    this.subscriber.subscribe(TX_EVENTS_CHANNEL).catch((error: Error) => this.lost('subscriber', `subscribe: ${describeCause(error)}`));
    this.subscriber.on('message', (_channel: string, raw: string) => {
      try {
        const envelope = JSON.parse(raw) as { origin: string; message: BusMessage };
        if (envelope.origin !== this.origin) this.local.emit('message', envelope.message);
      } catch {
        this.logger.warn('ignored a malformed bus message');
      }
    });
  }

  publish(message: BusMessage): void {
    // Other instances hear it through Redis; this one hears it at once, even if Redis is down.
    this.local.emit('message', message);
    this.publisher.publish(TX_EVENTS_CHANNEL, JSON.stringify({ origin: this.origin, message })).catch(() => undefined);
  }

  async ping(): Promise<void> {
    await this.publisher.ping();
  }

  private lost(name: 'publisher' | 'subscriber', cause: string): void {
    if (!this.closing) this.outage.failed(`${name}: ${cause}`, name);
  }

  async onModuleDestroy(): Promise<void> {
    this.closing = true;
    await Promise.all([this.publisher.quit(), this.subscriber.quit()]).catch(() => undefined);
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}
