import { Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { parseSigningSecret } from '@nest-dtx/protocol';
import { CoordinatorError, TransactionClient } from '@nest-dtx/sdk';
import type { CounterEnv } from './counter-env.js';
import { ORDER_EVENTS, type EventSource } from './event-names.js';

/** How long start-up waits for the coordinator to take the registrations. */
const REGISTER_WAIT_MS = 60_000;
/** How often the registrations are renewed, which is how a rotated signing secret reaches the inboxes. */
const REFRESH_MS = 5 * 60 * 1000;

/**
 * The counter's two publish targets, registered by the counter itself (it owns the queue and
 * the stream they publish to): `order-events-rabbitmq` (transport rabbitmq) and
 * `order-events-nats` (transport nats), each with the single action `order.created` in mode
 * msg. Each registration answers that target's signing secret, which the coordinator signs
 * every published message with; the inbox of that source verifies with it.
 */
export class PublishTargets {
  private readonly logger = new Logger('PublishTargets');
  private readonly keys = new Map<EventSource, Buffer>();
  private refresh: NodeJS.Timeout | null = null;

  constructor(private readonly client: TransactionClient) {}

  static fromEnv(env: CounterEnv): PublishTargets {
    return new PublishTargets(new TransactionClient({ coordinatorUrl: env.COORDINATOR_URL, apiKey: env.COORDINATOR_API_KEY, timeoutMs: 10_000 }));
  }

  /** Registers both targets, waiting for the coordinator (up to a minute), and renews them in the background. */
  async register(): Promise<void> {
    const giveUpAt = Date.now() + REGISTER_WAIT_MS;
    for (;;) {
      try {
        await this.registerOnce();
        break;
      } catch (error) {
        // A refusal (bad key, name owned by another key, a coordinator without the broker) will not change by waiting.
        if (error instanceof CoordinatorError && error.statusCode >= 400 && error.statusCode < 500) throw new Error(`the coordinator refused the publish targets: ${error.message}`);
        if (Date.now() > giveUpAt) throw new Error(`cannot register the publish targets: ${(error as Error).message}`);
        await delay(1_000);
      }
    }
    this.refresh = setInterval(() => {
      this.registerOnce().catch((error: unknown) => this.logger.warn(`renewing the publish targets failed (keeping the secrets in force): ${(error as Error).message}`));
    }, REFRESH_MS);
    this.refresh.unref();
  }

  /** The keys messages of `source` are verified with: the target's current signing secret. */
  keysOf(source: EventSource): () => readonly Buffer[] {
    return () => {
      const key = this.keys.get(source);
      return key ? [key] : [];
    };
  }

  stop(): void {
    if (this.refresh) clearInterval(this.refresh);
  }

  private async registerOnce(): Promise<void> {
    const actions = [{ name: ORDER_EVENTS.event, modes: ['msg' as const] }];
    const [rabbitmq, nats] = await Promise.all([
      this.client.registerParticipant({ name: ORDER_EVENTS.rabbitmqTarget, transport: 'rabbitmq', publish: true, actions }),
      this.client.registerParticipant({ name: ORDER_EVENTS.natsTarget, transport: 'nats', publish: true, actions }),
    ]);
    this.keys.set('rabbitmq', parseSigningSecret(rabbitmq.signingSecret));
    this.keys.set('nats', parseSigningSecret(nats.signingSecret));
  }
}
